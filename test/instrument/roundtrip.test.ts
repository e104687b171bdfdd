import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteReader, ByteWriter } from '../../src/vm/instrument/bytes.js';
import { Instr, decodeInstr } from '../../src/vm/instrument/code.js';
import { prepareModule } from '../../src/vm/instrument/index.js';
import { readModule } from '../../src/vm/instrument/reader.js';
import { writeInstr, writeModule } from '../../src/vm/instrument/writer.js';
import { KITCHEN_SINK } from './fixtures.js';
import { OPEN_POLICY, loadContract, wat } from './helpers.js';

const CONTRACTS = ['fib', 'sha256', 'memcpy'];

/** Decodes every instruction of every function and encodes it again from the decoded fields. */
function reencodeCode(bytes: Uint8Array): { same: number; total: number } {
  const m = readModule(bytes);
  const ins = new Instr();
  let same = 0;
  m.codes.forEach((c, i) => {
    const r = new ByteReader(bytes, c.codeOffset, c.codeOffset + c.code.length);
    const w = new ByteWriter();
    while (!r.eof()) {
      decodeInstr(r, ins, { functionIndex: i, decodeI64: true });
      writeInstr(w, ins, bytes);
    }
    assert.deepEqual(Buffer.from(w.view()), Buffer.from(c.code), `function ${i} re-encodes to the same bytes`);
    same++;
  });
  return { same, total: m.codes.length };
}

async function fixtures(): Promise<[string, Uint8Array][]> {
  return [
    ['kitchen sink', await wat(KITCHEN_SINK)],
    ['kitchen sink with a name section', await wat(KITCHEN_SINK, { names: true })],
    ['empty module', await wat('(module)')],
    ['passive and active element forms', await wat(`(module (table 4 funcref) (func $f) (func $g)
      (elem (i32.const 1) $f $g) (elem func $g) (elem (i32.const 0) funcref (ref.func $f) (ref.null func)))`)],
  ];
}

test('AssemblyScript contracts round-trip byte for byte', () => {
  for (const name of CONTRACTS) {
    const bytes = loadContract(name);
    assert.ok(bytes.length > 100, `${name}.wasm is built (npm run build)`);
    const m = readModule(bytes);
    assert.ok(m.codes.length > 0);
    assert.deepEqual(Buffer.from(writeModule(m)), Buffer.from(bytes), name);
    const { same, total } = reencodeCode(bytes);
    assert.equal(same, total);
  }
});

test('wabt-built fixtures round-trip byte for byte, custom sections in place', async () => {
  for (const [name, bytes] of await fixtures()) {
    assert.deepEqual(Buffer.from(writeModule(readModule(bytes))), Buffer.from(bytes), name);
    reencodeCode(bytes);
  }
  const named = readModule(await wat(KITCHEN_SINK, { names: true }));
  assert.deepEqual(named.customs.map((c) => c.name), ['name']);
});

test('instrumented modules are readable and round-trip too', async () => {
  for (const bytes of [...CONTRACTS.map(loadContract), await wat(KITCHEN_SINK)]) {
    const out = prepareModule(bytes, OPEN_POLICY).bytes;
    assert.equal(WebAssembly.validate(out), true);
    assert.deepEqual(Buffer.from(writeModule(readModule(out))), Buffer.from(out));
    reencodeCode(out);
  }
});

test('the reader refuses truncated and malformed input with an offset', () => {
  const bytes = loadContract('fib');
  for (const cut of [3, 7, 9, 20, bytes.length - 1]) {
    assert.throws(() => readModule(bytes.subarray(0, cut)), (e: Error) => /module rejected: malformed.*offset 0x/.test(e.message), `cut at ${cut}`);
  }
  const bad = Uint8Array.from(bytes);
  bad[0] = 1;
  assert.throws(() => readModule(bad), /malformed: bad magic number/);
});
