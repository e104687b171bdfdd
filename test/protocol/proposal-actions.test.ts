import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkProposalActions, decodeProposalActions } from '../../src/protocol/proposal-actions.js';

const u32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24];
const str = (bytes: number[]): number[] => [...u32(bytes.length), ...bytes];
const ascii = (s: string): number[] => [...Buffer.from(s, 'ascii')];

/** What a function throws for `bytes` (its message), or 'ok'. */
function outcome(fn: (b: Uint8Array) => unknown, bytes: Uint8Array): string {
  try {
    fn(bytes);
    return 'ok';
  } catch (e) {
    return `${(e as Error).name}: ${(e as Error).message}`;
  }
}

test('checkProposalActions accepts and refuses exactly what decodeProposalActions does, with the same error', () => {
  const call = [0, ...str(ascii('bob')), ...str(ascii('go')), ...str(ascii('{}')), ...new Array<number>(16).fill(0)];
  const transfer = [1, ...str(ascii('bob')), ...new Array<number>(16).fill(0xff)];
  const setValue = [4, ...str([1, 2]), ...str([])];
  const all = [...call, ...transfer, 2, ...u32(3), 3, ...u32(9), ...setValue, 5, ...new Array<number>(32).fill(7)];
  const cases: number[][] = [
    [...u32(6), ...all],
    [...u32(0)],
    [...u32(7), ...all], // a count the bytes cannot hold
    [...u32(6), ...all, 0], // trailing byte
    [...u32(1), 9, 0, 0, 0, 0], // unknown tag
    [...u32(1), 1, ...str([0x61, 0x62, 0xc3, 0x28]), ...new Array<number>(16).fill(0)], // bad UTF-8 after ASCII
    [...u32(1), 1, ...str([0xe2, 0x82, 0xac]), ...new Array<number>(16).fill(0)], // U+20AC, valid
    [...u32(1), 0, ...str(ascii('a')), ...str([0xed, 0xa0, 0x80]), ...str([]), ...new Array<number>(16).fill(0)], // a surrogate
  ];
  // Every truncation of the full list names the same field at the same byte.
  const full = [...u32(6), ...all];
  for (let n = 0; n < full.length; n++) cases.push(full.slice(0, n));
  for (const c of cases) {
    const bytes = Uint8Array.from(c);
    assert.equal(outcome(checkProposalActions, bytes), outcome(decodeProposalActions, bytes), Buffer.from(bytes).toString('hex'));
  }
  assert.equal(outcome(checkProposalActions, Uint8Array.from(cases[0]!)), 'ok');
  assert.match(outcome(checkProposalActions, Uint8Array.from(cases[5]!)), /^ProposalDecodeError: action 0 receiver_id is not valid UTF-8$/);
});
