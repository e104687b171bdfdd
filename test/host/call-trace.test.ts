/**
 * What a call's trace keeps of its storage reads (HostOptions.traceReads) is bounded by what it costs the host's
 * heap, not only by the bytes read: reads of an empty key used to be free, and a VM could record millions.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CallTrace, MAX_TRACE_READ_BYTES, READ_ENTRY_BYTES } from '../../src/host/call-trace.js';

describe('recorded reads', () => {
  test('reads of an empty, absent key count their entry: past the cap they are marked incomplete', () => {
    const trace = new CallTrace();
    trace.reads = [];
    const most = Math.floor(MAX_TRACE_READ_BYTES / READ_ENTRY_BYTES);
    for (let i = 0; i < most + 1000; i++) trace.read(new Uint8Array(0), undefined);
    assert.equal(trace.reads.length, most);
    assert.equal(trace.readsComplete, false);
  });

  test('a recorded key is a copy, not a view that keeps the frame it came in', () => {
    const trace = new CallTrace();
    trace.reads = [];
    const frame = new Uint8Array(64 * 1024).fill(7);
    trace.read(frame.subarray(10, 13), Uint8Array.of(1));
    frame.fill(0);
    assert.deepEqual(trace.reads[0]!.key, Uint8Array.of(7, 7, 7));
    assert.equal(trace.reads[0]!.key.buffer.byteLength, 3);
  });
});
