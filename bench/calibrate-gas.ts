/**
 * Re-derives the gas schedule (protocol/gas-costs.json) on this machine. The unit is plain WebAssembly: the
 * median ns per gas of the metering bench's contracts (recursive calls, SHA-256, a copy loop). Each host loop
 * of bench/gas-workloads.ts runs a counted number of rounds in a pooled VM (N and N/10, N chosen so that a call
 * takes about 150 ms; best of 5 each, because the machine is shared); the difference gives the ns of one round,
 * free of fixed costs. Pairs of loops that differ in one dimension give that
 * dimension: bytes (16 KiB against a few bytes), and the round trip (a cold key against a warm one).
 * Prints ns per call and the suggested gas (ns / unit, rounded up); copy what you adopt into
 * protocol/gas-costs.json, bump its schedule_version, run `npm run codegen`, then check with `npm run bench`.
 *
 *   node dist/bench/calibrate-gas.js
 */
import { fileURLToPath } from 'node:url';
import { openGasHost, timeCall } from './gas.js';
import { BULK_BYTES, countedHostWorkloads } from './gas-workloads.js';
import { workloadBytes } from './gas-workloads.js';
import { benchMeteringAsVm } from './metering.js';

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export interface Calibration {
  /** ns per gas of plain WebAssembly (the unit). */
  unit: number;
  /** ns per round of each host loop. */
  perCall: Map<string, number>;
}

/** Rounds of a loop whose longer timed call should take about `targetMs` (found with a probe of 200 rounds). */
async function roundsFor(probeNs: number, targetMs: number): Promise<number> {
  const perRound = Math.max(probeNs / 200, 50);
  return Math.max(200, Math.min(2_000_000, Math.round((targetMs * 1e6) / perRound)));
}

export async function calibrate(opts: { targetMs: number; repeats: number }): Promise<Calibration> {
  const metering = await benchMeteringAsVm(5);
  const unit = median(metering.cases.map((c) => (c.meteredMs * 1e6) / Number(c.gasUsed)));
  const { host, close } = await openGasHost();
  const perCall = new Map<string, number>();
  try {
    const best = async (name: string, h: Uint8Array, repeats: number): Promise<number> => {
      let min = Infinity;
      for (let r = 0; r < repeats; r++) {
        const t = await timeCall(host, h, 1n << 60n);
        if (t.code !== 'return') throw new Error(`${name}: ${t.code} ${t.message}`);
        min = Math.min(min, t.ns);
      }
      return min;
    };
    const probes = countedHostWorkloads(200);
    for (const probe of probes) {
      const hp = await host.deploy(await workloadBytes(probe));
      await best(probe.name, hp, 2); // warm-up: compilation and tier-up
      const large = await roundsFor(await best(probe.name, hp, 1), opts.targetMs);
      const small = Math.max(1, Math.floor(large / 10));
      const ws = countedHostWorkloads(small).find((w) => w.name === probe.name)!;
      const wl = countedHostWorkloads(large).find((w) => w.name === probe.name)!;
      const hs = await host.deploy(await workloadBytes(ws));
      const hl = await host.deploy(await workloadBytes(wl));
      await best(probe.name, hs, 1);
      await best(probe.name, hl, 1);
      perCall.set(probe.name, ((await best(probe.name, hl, opts.repeats)) - (await best(probe.name, hs, opts.repeats))) / (large - small));
    }
  } finally {
    await close();
  }
  return { unit, perCall };
}

export function printCalibration(c: Calibration): string {
  const gas = (ns: number): number => Math.ceil(Math.max(ns, 0) / c.unit);
  const ns = (name: string): number => {
    const v = c.perCall.get(name);
    if (v === undefined) throw new Error(`no measurement for ${name}`);
    return v;
  };
  const lines = [`unit: plain WebAssembly median ${c.unit.toFixed(4)} ns per gas (1 ns = ${(1 / c.unit).toFixed(1)} gas)`, ''];
  lines.push('host loop                              ns/call   gas/call (suggested)');
  for (const [name, v] of c.perCall) lines.push(`${name.padEnd(36)} ${v.toFixed(0).padStart(9)}   ${String(gas(v)).padStart(10)}`);
  const perByte = (bulk: string, base: string): number => (ns(bulk) - ns(base)) / BULK_BYTES;
  const roundTrip = ns('storage_read distinct keys') - ns('storage_read warm key');
  lines.push('', 'derived dimensions                      ns        gas (suggested)');
  const row = (what: string, v: number, g: number | string): string => `${what.padEnd(36)} ${v.toFixed(3).padStart(9)}   ${String(g).padStart(10)}`;
  lines.push(row('round trip to the host (base)', roundTrip, gas(roundTrip)));
  lines.push(row('trivial call (register_len)', ns('register_len'), gas(ns('register_len'))));
  lines.push(row('copy out per byte (read_register)', perByte('read_register 16 KiB', 'register_len'), (perByte('read_register 16 KiB', 'register_len') / c.unit).toFixed(2)));
  lines.push(row('copy in per byte (value_return)', perByte('value_return 16 KiB', 'register_len'), (perByte('value_return 16 KiB', 'register_len') / c.unit).toFixed(2)));
  lines.push(row('random_bytes per byte', perByte('random_bytes 16 KiB', 'time_now'), (perByte('random_bytes 16 KiB', 'time_now') / c.unit).toFixed(2)));
  lines.push(row('storage_write per byte', perByte('storage_write 16 KiB same key', 'storage_read warm key'), (perByte('storage_write 16 KiB same key', 'storage_read warm key') / c.unit).toFixed(2)));
  lines.push(row('ed25519_verify base (64 B message)', ns('ed25519_verify 64 B'), gas(ns('ed25519_verify 64 B'))));
  lines.push(row('ed25519_verify per message byte', perByte('ed25519_verify 16 KiB', 'ed25519_verify 64 B'), (perByte('ed25519_verify 16 KiB', 'ed25519_verify 64 B') / c.unit).toFixed(2)));
  lines.push(row('context_is_member minus round trip', ns('context_is_member') - roundTrip, gas(ns('context_is_member') - roundTrip)));
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(printCalibration(await calibrate({ targetMs: 150, repeats: 5 })) + '\n');
}
