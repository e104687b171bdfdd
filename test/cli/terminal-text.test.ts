/**
 * A contract's text reaches the operator's terminal without its control characters acting there (separate CLI
 * processes, real VM processes, a data directory on disk): its logs, event kinds, panic message and return value
 * in `hostlink call`, its export names in `check`, `codes` and `inspect`. Before, an ESC sequence in a log line
 * could clear the screen or retitle the terminal, a carriage return overwrite the line before it.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { contractPath, tempDir } from '../helpers.js';
import { call, Probe } from '../node/probe.js';
import { cliIn } from './run-cli.js';

const dir = tempDir('hostlink-terminal-text-');
const { run: hostlink } = cliIn(dir.path);

/** What a terminal acts on: C0 but newline, DEL, C1, and the bidirectional controls. */
// eslint-disable-next-line no-control-regex
const ACTS_ON_TERMINAL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** Screen clear, window title, a carriage return, an 8-bit CSI, a right-to-left override, a bell. */
const HOSTILE = '\u001b[2J\u001b]0;owned\u0007ok\rforged line\u009b31mred\u202eevil\u0007';

/** A module with one function exported as `name`, and its memory (no imports). */
function exporting(name: string): Uint8Array {
  const n = Buffer.from(name, 'utf8');
  const memory = Buffer.from('memory');
  const exportBody = [0x02, n.length, ...n, 0x00, 0x00, memory.length, ...memory, 0x02, 0x00];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // one type: () -> ()
    0x03, 0x02, 0x01, 0x00, // one function of it
    0x05, 0x03, 0x01, 0x00, 0x01, // one memory of one page
    0x07, exportBody.length, ...exportBody,
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // its empty body
  ]);
}

function assertInert(where: string, text: string): void {
  const m = ACTS_ON_TERMINAL.exec(text);
  assert.equal(m, null, `${where} holds U+${m?.[0].charCodeAt(0).toString(16).padStart(4, '0')}: ${JSON.stringify(text)}`);
}

describe('contract text on the terminal', () => {
  after(() => dir.remove());

  test('call: logs, event kind and data, panic message', () => {
    const input = join(dir.path, 'hostile.txt');
    writeFileSync(input, HOSTILE);
    const r = hostlink('call', contractPath('misbehave'), 'terminal_text', '--input', `@${input}`, '--context', 'tty');
    assert.notEqual(r.code, 0, 'the method panics');
    assertInert('stdout', r.stdout);
    assertInert('stderr', r.stderr);
    // Shown, escaped, not dropped: the operator sees what the contract wrote.
    assert.match(r.stdout, /Panic.*\\u001b\[2J\\u001b\]0;owned\\u0007ok\\u000dforged line\\u009b31mred\\u202eevil/);
    assert.match(r.stderr, /^ {2}log: \\u001b\[2J/m);
    assert.match(r.stderr, /^ {2}event: \\u001b\[2J.* 0x1b5b/m);
  });

  test('--json: the same, with nothing raw a terminal acts on (JSON escapes C0 only: DEL, C1, bidi escaped too)', () => {
    const input = join(dir.path, 'hostile.txt');
    writeFileSync(input, HOSTILE + '\u007f');
    const r = hostlink('call', contractPath('misbehave'), 'terminal_text', '--input', `@${input}`, '--context', 'tty', '--json');
    assertInert('stdout', r.stdout);
    const o = JSON.parse(r.stdout) as { logs: string[] };
    assert.equal(o.logs[0], HOSTILE + '\u007f', 'the same JSON value');
  });

  test('state: a value holding newlines cannot forge entries; contexts: a created alias is escaped', async () => {
    // kv-store keeps the value as given: one entry whose value reads like two more entries.
    const forged = hostlink('call', contractPath('kv-store'), 'set', '--input', JSON.stringify({ key: 'balance:mallory', value: '1\n  e:balance:alice = 0\n  e:owner = mallory' }), '--context', 'bank');
    assert.equal(forged.code, 0, forged.stderr);
    const state = hostlink('state', 'bank');
    assert.equal(state.code, 0, state.stderr);
    assert.equal(state.stdout.split('\n').filter((l) => l.startsWith('  e:')).length, 1, state.stdout);
    assert.match(state.stdout, /e:balance:mallory = .*1\\u000a {2}e:balance:alice = 0\\u000a/);

    const p = new Probe();
    const evil = '\u001b]0;owned\u0007\u001b[2J\rforged\u202e';
    p.method('create', call('context_create', p.buf('near'), p.buf(new Uint8Array(32).fill(7)), p.buf('{}'), p.buf(`a${evil}`)));
    const file = join(dir.path, 'alias.wasm');
    writeFileSync(file, await p.build());
    assert.equal(hostlink('call', file, 'create', '--context', 'creator').code, 0);
    const listed = hostlink('contexts');
    assert.equal(listed.code, 0, listed.stderr);
    assertInert('contexts stdout', listed.stdout);
    assert.match(listed.stdout, /alias a\\u001b\]0;owned\\u0007/);
  });

  test('a return value with control characters is shown as hex', () => {
    const input = join(dir.path, 'cr.txt');
    writeFileSync(input, 'ok\rforged');
    const r = hostlink('call', contractPath('misbehave'), 'echo', '--input', `@${input}`, '--context', 'tty');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `0x${Buffer.from('ok\rforged').toString('hex')}\n`);
  });

  test('check, deploy, codes and inspect: export names', () => {
    // A name with control characters is no method name: it is not listed as a method, and the warning that
    // names it shows its characters escaped.
    const file = join(dir.path, 'names.wasm');
    writeFileSync(file, exporting('run\u001b]0;owned\u0007\r\u009b2J'));
    const checked = hostlink('check', file);
    assertInert('check stdout', checked.stdout);
    assertInert('check stderr', checked.stderr);
    assert.match(checked.stdout, /^ok: .*methods: \(none\)\)\n$/);
    assert.match(checked.stderr, /no call can name, not listed as methods: "run\\u001b\]0;owned\\u0007\\r\\u009b2J"/);
    const deployed = hostlink('deploy', file);
    assert.equal(deployed.code, 0, deployed.stderr);
    const hash = deployed.stdout.trim();
    for (const args of [['codes'], ['inspect', hash]]) {
      const r = hostlink(...args);
      assert.equal(r.code, 0, r.stderr);
      assertInert(`${args[0]} stdout`, r.stdout);
      assertInert(`${args[0]} stderr`, r.stderr);
      assert.doesNotMatch(r.stdout, /run/);
    }
    assert.match(hostlink('inspect', hash).stderr, /not listed as methods: "run\\u001b\]0;owned\\u0007\\r\\u009b2J"/);
  });
});
