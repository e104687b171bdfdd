/**
 * Child process of disk-full-many.test.ts: a Host on the tmpfs at argv[2] runs kv-store `set` on 8 lanes, the
 * disk fills, more calls run, space returns. Prints `failed N` once the full round has settled and `after N`
 * once calls commit again; the parent judges how the process ended.
 */
import { rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Host } from '../../src/host/host.js';
import { contract, id32, utf8 } from '../helpers.js';

const mnt = process.argv[2]!;
const filler = join(mnt, 'filler');
const host = await Host.open({ dataDir: join(mnt, 'data'), poolSize: 2 });
const code = await host.deploy(contract('kv-store'));
const lanes = (round: string, calls: number) =>
  Promise.all(
    Array.from({ length: 8 }, async (_, lane) => {
      const outcomes = [];
      for (let i = 0; i < calls; i++) {
        const input = utf8(JSON.stringify({ key: `k${i % 40}`, value: `${round}-${lane}-${i}-${'v'.repeat(2000)}` }));
        outcomes.push(await host.call({ codeHash: code, method: 'set', input, contextId: id32(`many-${lane}-${i % 8}`) }));
      }
      return outcomes;
    }),
  ).then((all) => all.flat());
await lanes('warm', 2);
const s = statfsSync(mnt);
writeFileSync(filler, Buffer.alloc(Math.max(0, s.bavail * s.bsize - 256 * 1024)));
const during = await lanes('full', 60);
const failed = during.filter((o) => !o.applied);
const unnamed = failed.filter((o) => !/store LMDB commit failed: .*nothing of this write was kept/.test(JSON.stringify(o.result, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))));
process.stdout.write(`failed ${failed.length} unnamed ${unnamed.length}\n`);
rmSync(filler);
const after = await lanes('after', 3);
process.stdout.write(`after ${after.filter((o) => o.applied).length} of ${after.length}\n`);
await host.close();
