/**
 * `hostlink demo`: the product in one minute. Deploys the kv-store example and calls it through real VM
 * processes (a warm pool over a unix socket, then one-shot processes over TCP), shows that state survives a
 * restart of the host, that failures change nothing, and how nodes agree on a call that reads the web
 * (demo-oracle.ts).
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { HostlinkError } from '../../errors.js';
import { Host, type HostOptions, type Outcome } from '../../host/host.js';
import { HOSTLINK_BIN } from '../../host/supervisor.js';
import { cliSandbox, DEFAULT_DATA_DIR, hex, parse, parseId, showBytes } from '../common.js';
import { logText } from '../../terminal-text.js';
import { runOracleDemo } from './demo-oracle.js';

export const usage = `usage: hostlink demo [--data-dir DIR] [--sandbox required|best-effort|off]

Runs the kv-store example end to end in DIR/demo (default ./${DEFAULT_DATA_DIR}/demo, wiped first).
--sandbox: the VM processes' OS sandbox (default: required when the native parts are built, else best-effort).`;

const say = (s: string): void => {
  process.stdout.write(s + '\n');
};

function show(step: string, o: Outcome): void {
  const r = o.result;
  const what = r.code === 'return' ? (r.value instanceof Uint8Array ? showBytes(r.value) : String(r.value)) : `${r.code}: ${logText(r.message)}`;
  say(`  ${step.padEnd(44)} -> ${what}${o.applied && o.writes.length ? `   (${o.writes.length} write(s), root ${hex(o.stateRoot).slice(0, 12)}…)` : ''}`);
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { 'data-dir': { type: 'string' }, sandbox: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, usage);
  const sandbox = cliSandbox(values.sandbox);
  const dataDir = join(resolve(values['data-dir'] ?? DEFAULT_DATA_DIR), 'demo');
  rmSync(dataDir, { recursive: true, force: true });
  const wasm = join(HOSTLINK_BIN, '..', '..', 'examples', 'kv-store', 'build', 'kv-store.wasm');
  if (!existsSync(wasm)) throw new HostlinkError('not_found', `${wasm} is missing: run npm install (it builds the examples)`);
  const contextId = parseId('demo');
  const input = (o: object): Uint8Array => Uint8Array.from(Buffer.from(JSON.stringify(o)));

  say(`Hostlink demo: data in ${dataDir}`);
  const open = (o: HostOptions): Promise<Host> => Host.open({ dataDir, sandbox, ...o });
  say(`VM sandbox: ${sandbox} (hostlink doctor lists the layers)`);

  let host = await open({ transport: 'unix', mode: 'pool', poolSize: 2 });
  const codeHash = await host.deploy(Uint8Array.from(readFileSync(wasm)));
  say(`deployed kv-store.wasm as ${hex(codeHash)}`);
  say('\n1. a warm pool of 2 VM processes over unix sockets');
  const call = (method: string, args: object) => host.call({ codeHash, method, input: input(args), contextId });
  show('set greeting = hello', await call('set', { key: 'greeting', value: 'hello' }));
  show('set lang = typescript', await call('set', { key: 'lang', value: 'typescript' }));
  show('get greeting', await call('get', { key: 'greeting' }));
  show('entries', await call('entries', {}));
  const n = 200;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: n }, (_, i) => host.call({ codeHash, method: 'set', input: input({ key: `k${i}`, value: `${i}` }), contextId: parseId(`demo-${i % 8}`) })));
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  say(`  ${n} sets over 8 contexts in ${ms.toFixed(0)} ms (${((n / ms) * 1000).toFixed(0)} executions/s)`);
  show('get_result of a missing key (UserError)', await call('get_result', { key: 'missing' }));
  await host.close();

  say('\n2. the host restarts; one VM process per call over TCP');
  host = await open({ transport: 'tcp', mode: 'oneshot' });
  show('get greeting (persisted)', await call('get', { key: 'greeting' }));
  show('remove lang', await call('remove', { key: 'lang' }));
  show('get_unchecked of a missing key (panic)', await call('get_unchecked', { key: 'lang' }));
  const { root, entries } = host.state(contextId);
  say(`\nstate of context "demo" (${hex(contextId).slice(0, 16)}…): root ${hex(root)}`);
  for (const [k, v] of entries) say(`  ${logText(showBytes(k))} = ${logText(showBytes(v))}`);

  say('\n3. non-deterministic blocks: a leader and 5 validators, each on its own copy of the state');
  await runOracleDemo(host, say, sandbox);
  await host.close();
  say(`\nTry it yourself: hostlink call ${relative(process.cwd(), wasm)} set --input '{"key":"a","value":"b"}'`);
  return 0;
}
