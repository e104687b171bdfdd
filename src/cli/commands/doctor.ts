/** `hostlink doctor`: what this installation can do here, and what to install when something is missing. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { HOSTLINK_BIN } from '../../host/supervisor.js';
import { PROTOCOL_VERSION_MAX, PROTOCOL_VERSION_MIN } from '../../protocol/generated.js';
import { channelInfo } from '../../transport/connect.js';
import { INSTRUMENTATION_VERSION } from '../../vm/instrument/index.js';
import { HOSTLINK_VERSION } from '../../version.js';
import { parse } from '../common.js';

export const usage = `usage: hostlink doctor [--json]

Checks this installation: Node version, the VM's socket channel (native addon or pure-JS fallback), the
example contracts, and socat for vsock addresses. Exit code 0 when the VM can run, 1 otherwise.`;

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** A missing optional part does not stop the VM from running. */
  optional?: boolean;
}

function checks(): Check[] {
  const root = join(HOSTLINK_BIN, '..', '..');
  const major = Number(process.versions.node.split('.')[0]);
  const ch = channelInfo();
  const socat = spawnSync('socat', ['-V'], { encoding: 'utf8' });
  const socatVersion = /socat version ([\d.]+)/.exec(socat.stdout ?? '')?.[1];
  const example = join(root, 'examples', 'kv-store', 'build', 'kv-store.wasm');
  return [
    { name: 'node', ok: major >= 20, detail: `${process.version}${major >= 20 ? '' : ': Hostlink needs Node.js 20 or newer'}` },
    {
      name: 'native channel',
      ok: ch.native.available,
      optional: true,
      detail: ch.native.available ? ch.native.path : `${ch.native.reason ?? 'not built'}; run npm install with a C compiler present to build it`,
    },
    { name: 'js channel', ok: ch.js.available, optional: ch.native.available, detail: ch.js.available ? 'available' : ch.js.reason ?? 'unavailable' },
    { name: 'VM channel in use', ok: true, detail: ch.auto },
    { name: 'example contracts', ok: existsSync(example), optional: true, detail: existsSync(example) ? 'built' : 'not built: run npm run build' },
    {
      name: 'socat (vsock)',
      ok: socatVersion !== undefined,
      optional: true,
      detail: socatVersion ? `socat ${socatVersion}` : 'not installed: vsock addresses of hostlink guest/agent need socat >= 1.7.4 (apt-get install socat)',
    },
  ];
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parse(argv, { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, usage);
  const results = checks();
  const ready = results.every((c) => c.ok || c.optional);
  const versions = { hostlink: HOSTLINK_VERSION, protocol: `${PROTOCOL_VERSION_MIN}..${PROTOCOL_VERSION_MAX}`, instrumentation: INSTRUMENTATION_VERSION };
  if (values.json) {
    process.stdout.write(JSON.stringify({ ready, versions, checks: results }) + '\n');
  } else {
    process.stdout.write(`hostlink ${versions.hostlink}, protocol ${versions.protocol}, instrumentation v${versions.instrumentation}\n`);
    const width = Math.max(...results.map((c) => c.name.length));
    for (const c of results) process.stdout.write(`  ${c.ok ? 'ok  ' : c.optional ? 'note' : 'FAIL'}  ${c.name.padEnd(width)}  ${c.detail}\n`);
    process.stdout.write(ready ? 'the VM can run here\n' : 'the VM cannot run here: fix the FAIL lines\n');
  }
  return ready ? 0 : 1;
}
