/**
 * The files of a new contract project (`hostlink new NAME`): an AssemblyScript contract that uses the SDK, an
 * asconfig, a test with hostlink/testing, a README. It builds and tests out of the box: `npm install` (or a
 * parent folder that already has hostlink, @hostlink/sdk and assemblyscript), then `npm test`.
 */
import { HOSTLINK_VERSION } from '../version.js';
import { ABORT_FLAG } from './check.js';

/** Names npm accepts for an unscoped package, which also make a folder and a .wasm name. */
export const PROJECT_NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export function scaffoldFiles(name: string): Record<string, string> {
  const abortUse = ABORT_FLAG.replace(/^--use /, '');
  return {
    'package.json': JSON.stringify(
      {
        name,
        version: '0.1.0',
        private: true,
        type: 'module',
        scripts: {
          build: 'hostlink build',
          // Bare `node --test` runs every test file in the project (test/**, *.test.js; node_modules excluded) on
          // Node 20 and later alike; `node --test test/` works on 20 only (21+ take globs and would not expand it).
          test: 'hostlink build && node --test',
          deploy: `hostlink deploy build/${name}.wasm`,
        },
        dependencies: { '@hostlink/sdk': `^${HOSTLINK_VERSION}` },
        devDependencies: { assemblyscript: '0.28.20', hostlink: `^${HOSTLINK_VERSION}` },
      },
      null,
      2,
    ) + '\n',
    // For editors and a bare `npx asc`; `hostlink build` passes the same flags itself.
    'asconfig.json': JSON.stringify(
      {
        targets: { release: { outFile: `build/${name}.wasm` } },
        options: { optimize: true, runtime: 'stub', noAssert: true, exportRuntime: true, use: [abortUse] },
      },
      null,
      2,
    ) + '\n',
    'assembly/tsconfig.json': JSON.stringify({ extends: 'assemblyscript/std/assembly.json', include: ['./**/*.ts'] }, null, 2) + '\n',
    'assembly/index.ts': CONTRACT,
    'test/contract.test.js': TEST.replaceAll('NAME', name),
    'README.md': readme(name),
    '.gitignore': 'node_modules/\nbuild/\n.hostlink/\n',
  };
}

const CONTRACT = `// A counter with a greeting: every exported \`function m(): void\` is a method. Inputs and outputs are JSON.
// The doc comments' @input/@output/@event tags become the contract's ABI (hostlink inspect shows it).
import {
  input, returnOk, returnErr, storageRead, storageWrite, jsonParseBytes, jsonQuote, emit, log,
  executorId, toHex, fromUtf8,
} from "@hostlink/sdk";

const COUNT = "count";
const GREETING = "greeting";

/** A string member of the JSON input object, or null (no object, no such member, not a string). */
function inputField(name: string): string | null {
  const args = jsonParseBytes(input());
  if (args === null || !args.isObject) return null;
  return args.getString(name);
}

function readCount(): u64 {
  const raw = storageRead<string>(COUNT);
  return raw === null ? 0 : <u64>parseInt(fromUtf8(raw));
}

/**
 * Adds one to the counter and returns the new value.
 * @input {}
 * @output "number"
 * @event incremented {"count": "number", "by": "hex account id"}
 */
export function increment(): void {
  const count = readCount() + 1;
  storageWrite<string, string>(COUNT, count.toString());
  emit<string>("incremented", '{"count":' + count.toString() + ',"by":"' + toHex(executorId()) + '"}');
  returnOk(count.toString());
}

/**
 * The counter's value.
 * @output "number"
 * @view
 */
export function count(): void {
  returnOk(readCount().toString());
}

/**
 * Sets the greeting; an empty one is refused with {"kind":"InvalidInput"}.
 * @input {"greeting": "string"}
 * @output null
 */
export function set_greeting(): void {
  const greeting = inputField("greeting");
  if (greeting === null || greeting.length == 0) {
    returnErr('{"kind":"InvalidInput","data":"greeting must be a non-empty string"}');
    return;
  }
  log("greeting set to " + greeting);
  storageWrite<string, string>(GREETING, greeting);
  returnOk("null");
}

/**
 * The greeting followed by the caller's name, e.g. "hello, alice".
 * @input {"name": "string"}
 * @output "string"
 * @view
 */
export function greet(): void {
  const name = inputField("name");
  // throw aborts the call as a panic (a user_error); the SDK's abort handler turns it into panic_utf8.
  if (name === null) throw new Error("greet needs {\\"name\\": string}");
  const stored = storageRead<string>(GREETING);
  const greeting = stored === null ? "hello" : fromUtf8(stored);
  returnOk(jsonQuote(greeting + ", " + name));
}
`;

const TEST = `// Tests of the contract through real VM processes, with the hostlink/testing harness (docs/testing.md).
// Run: npm test (builds first).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TestHost } from 'hostlink/testing';

let t;
let contract;

before(async () => {
  t = await TestHost.open({ datetime: '2025-01-01T00:00:00Z' });
  contract = await t.deploy(new URL('../build/NAME.wasm', import.meta.url).pathname);
});
after(() => t.close());

test('increment counts and emits an event naming the caller', async () => {
  const alice = t.account('alice');
  const r = await contract.call('increment', {}, { as: alice });
  assert.equal(r.expectOk(), 1);
  assert.deepEqual(r.events.map((e) => e.json()), [{ count: 1, by: alice.hex }]);
  assert.equal((await contract.call('increment', {}, { as: t.account('bob') })).expectOk(), 2);
  assert.equal(t.readText('count'), '2');
});

test('a view runs without applying', async () => {
  const r = await contract.view('increment');
  assert.equal(r.applied, false);
  assert.equal((await contract.view('count')).expectOk(), 2);
});

test('greetings: state patched by the test, errors asserted', async () => {
  await t.patch({ greeting: 'hi' });
  assert.equal((await contract.view('greet', { name: 'carol' })).expectOk(), 'hi, carol');
  const bad = await contract.call('set_greeting', { greeting: '' });
  assert.deepEqual(bad.errorJson(), { kind: 'InvalidInput', data: 'greeting must be a non-empty string' });
  (await contract.call('greet', {})).expectError('user_error', /greet needs/);
  (await contract.call('nope')).expectError('vm_error', /method_not_found nope \\(methods: .*increment/);
});
`;

/** The README's commands, each with its comment; the comments line up whatever the project's name. */
function commands(name: string): string {
  const rows: [string, string][] = [
    ['npm install', 'hostlink, @hostlink/sdk and the AssemblyScript compiler'],
    ['npm test', 'hostlink build, then every test file in test/ (real VM processes, in-memory state)'],
    ['npx hostlink build --watch', 'rebuild on every change'],
    [`npx hostlink inspect build/${name}.wasm`, 'the methods, their shapes and events (the ABI)'],
    [`npx hostlink deploy build/${name}.wasm`, 'store it in ./.hostlink'],
    [`npx hostlink call build/${name}.wasm increment --input '{}'`, ''],
    [`npx hostlink view build/${name}.wasm count`, 'runs without applying'],
    ['npx hostlink state name:default', "the context's keys and values"],
  ];
  const width = Math.max(...rows.filter(([, c]) => c !== '').map(([cmd]) => cmd.length)) + 2;
  return rows.map(([cmd, comment]) => (comment === '' ? cmd : `${cmd.padEnd(width)}# ${comment}`)).join('\n');
}

function readme(name: string): string {
  return README.replace('COMMANDS', commands(name)).replaceAll('NAME', name);
}

const README = `# NAME

A Hostlink contract in AssemblyScript.

\`\`\`sh
COMMANDS
\`\`\`

- \`assembly/index.ts\`: the contract. Every exported \`function m(): void\` is a method; it reads its input
  with \`input()\` and answers with \`returnOk(json)\` or \`returnErr(json)\`. The doc comments' \`@input\`,
  \`@output\`, \`@view\` and \`@event\` tags become the ABI that \`hostlink build\` embeds.
- \`test/contract.test.js\`: tests with \`hostlink/testing\` (accounts, block time, state patching, views).
  \`npm test\` runs every test file: add more as \`test/*.test.js\`.
- \`hostlink build\` compiles with the flags every contract needs (\`--runtime stub\`, the SDK's abort handler)
  and runs the checks a host applies at deploy time, so a build that succeeds deploys.

The SDK's reference is in node_modules/@hostlink/sdk/README.md; the host's in node_modules/hostlink/docs/.
`;
