/**
 * Prometheus metrics built on a Host's events (src/host/events.ts) with prom-client. Names, units and labels
 * are documented in docs/metrics.md; every label has a bounded value set: no context ids, no code hashes,
 * contract method names only up to a cap (the rest share the value "_other").
 *
 *   const metrics = new HostMetrics(host);            // its own registry unless one is given
 *   res.end(await metrics.registry.metrics());        // text exposition format
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Host } from '../host/host.js';
import type { HostEventMap } from '../host/events.js';
import { METHOD_NAMES } from '../protocol/generated.js';

export interface HostMetricsOptions {
  /** Registry to register in (default: a new one, so two hosts in one process never collide). */
  registry?: Registry;
  /** Distinct contract method names that get their own `method` label value (default 32; 0: none). */
  methodLabels?: number;
}

export const DEFAULT_METHOD_LABELS = 32;
/** Seconds, from 100 us to 30 s: a host call costs microseconds, an execution is bounded by its deadline. */
export const DURATION_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Gas, by powers of ten up to the default limit (1e9) and beyond. */
export const GAS_BUCKETS = [1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12];
export const ROUND_TRIP_BUCKETS = [1, 2, 3, 5, 10, 20, 50, 100, 500, 1000, 5000];

const PROTOCOL_METHODS: ReadonlySet<string> = new Set(METHOD_NAMES);
const METHOD_LABEL_SYNTAX = /^[A-Za-z0-9_]{1,64}$/;

export class HostMetrics {
  readonly registry: Registry;
  private readonly methods = new Set<string>();
  private readonly methodCap: number;
  private readonly offs: (() => void)[] = [];

  private readonly calls: Counter<'method' | 'result'>;
  private readonly callErrors: Counter<'result' | 'reason'>;
  private readonly callFailures: Counter;
  private readonly inFlight: Gauge;
  private readonly duration: Histogram<'phase'>;
  private readonly gas: Histogram<'result'>;
  private readonly hostCalls: Counter<'call'>;
  private readonly hostCallBytes: Counter<'call' | 'direction'>;
  private readonly roundTrips: Histogram;
  private readonly vmLaunches: Counter<'mode'>;
  private readonly vmExits: Counter<'mode' | 'how'>;
  private readonly vmCrashes: Counter;
  private readonly vmProcesses: Gauge<'mode'>;

  constructor(host: Host, options: HostMetricsOptions = {}) {
    const registers = [(this.registry = options.registry ?? new Registry())];
    this.methodCap = options.methodLabels ?? DEFAULT_METHOD_LABELS;
    this.calls = new Counter({ name: 'hostlink_calls_total', help: 'Calls finished, by contract method (capped) and result code', labelNames: ['method', 'result'], registers });
    this.callErrors = new Counter({ name: 'hostlink_call_errors_total', help: 'Calls that did not return, by result code and reason', labelNames: ['result', 'reason'], registers });
    this.callFailures = new Counter({ name: 'hostlink_call_failures_total', help: 'Calls that ended without an outcome (host.call threw: store failure, VM launch failure)', registers });
    this.inFlight = new Gauge({ name: 'hostlink_calls_in_flight', help: 'Calls submitted and not finished (queued or running)', registers });
    this.duration = new Histogram({
      name: 'hostlink_call_duration_seconds',
      help: 'Call duration by phase: queue (until a VM took it), vm (until its result), apply (commit), total',
      labelNames: ['phase'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.gas = new Histogram({ name: 'hostlink_call_gas_used', help: 'Gas used per call, by result code', labelNames: ['result'], buckets: GAS_BUCKETS, registers });
    this.hostCalls = new Counter({ name: 'hostlink_host_calls_total', help: 'Protocol requests VMs made during calls, by protocol method', labelNames: ['call'], registers });
    this.hostCallBytes = new Counter({
      name: 'hostlink_host_call_bytes_total',
      help: 'Protocol message body bytes during calls, by protocol method and direction (request: VM to host)',
      labelNames: ['call', 'direction'],
      registers,
    });
    this.roundTrips = new Histogram({ name: 'hostlink_call_round_trips', help: 'Protocol requests per call', buckets: ROUND_TRIP_BUCKETS, registers });
    this.vmLaunches = new Counter({ name: 'hostlink_vm_launches_total', help: 'VM processes started, by mode', labelNames: ['mode'], registers });
    this.vmExits = new Counter({ name: 'hostlink_vm_exits_total', help: 'VM processes ended, by mode and how (clean, error, signal)', labelNames: ['mode', 'how'], registers });
    this.vmCrashes = new Counter({ name: 'hostlink_vm_crashes_total', help: 'VM processes that ended while running a call', registers });
    this.vmProcesses = new Gauge({ name: 'hostlink_vm_processes', help: 'VM processes alive, by mode', labelNames: ['mode'], registers });
    const poolGauge = (name: string, help: string, key: 'workers' | 'idle' | 'queued') =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(host.poolStats?.[key] ?? 0);
        },
      });
    poolGauge('hostlink_pool_workers', 'Pool VM processes (idle or busy)', 'workers');
    poolGauge('hostlink_pool_idle', 'Pool VM processes waiting for a call', 'idle');
    poolGauge('hostlink_pool_queued', 'Calls waiting for a free pool VM', 'queued');
    // Counters read from the host at scrape time: writes / commits is how many calls each commit carried.
    const hostCounter = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    hostCounter('hostlink_commit_writes_total', 'Calls\' writes committed or being committed', () => host.commitStats.writes);
    hostCounter('hostlink_commits_total', 'Commits of calls\' writes (a group issued together counts once)', () => host.commitStats.commits);
    hostCounter('hostlink_commit_held_writes_total', 'Writes that waited for the calls beside them or for a commit in progress (group commit)', () => host.commitStats.held);
    hostCounter('hostlink_early_runs_total', 'Calls started while the previous call on their context was committing', () => host.earlyRunStats.runs);
    hostCounter('hostlink_early_runs_discarded_total', 'Early runs thrown away and run again after the previous call\'s commit (their answers would differ after it)', () => host.earlyRunStats.discarded);
    // Initialise the closed label sets at 0, so a rate() works before the first event.
    for (const mode of ['pool', 'oneshot']) this.vmLaunches.inc({ mode }, 0);

    this.offs.push(
      host.events.on('call.queued', () => this.inFlight.inc()),
      host.events.on('call.finished', (e) => this.finished(e)),
      host.events.on('call.failed', () => {
        this.inFlight.dec();
        this.callFailures.inc();
      }),
      host.events.on('vm.launched', (e) => {
        this.vmLaunches.inc({ mode: e.mode });
        this.vmProcesses.inc({ mode: e.mode });
      }),
      host.events.on('vm.exited', (e) => {
        this.vmExits.inc({ mode: e.mode, how: e.signal !== null ? 'signal' : e.exitCode === 0 ? 'clean' : 'error' });
        this.vmProcesses.dec({ mode: e.mode });
      }),
      host.events.on('vm.crashed', () => this.vmCrashes.inc()),
    );
  }

  /** The `method` label for a contract method: its name while under the cap, else "_other". */
  methodLabel(method: string): string {
    if (!METHOD_LABEL_SYNTAX.test(method)) return '_invalid';
    if (this.methods.has(method)) return method;
    if (this.methods.size >= this.methodCap) return '_other';
    this.methods.add(method);
    return method;
  }

  private finished(e: HostEventMap['call.finished']): void {
    this.inFlight.dec();
    this.calls.inc({ method: this.methodLabel(e.method), result: e.result });
    if (e.result !== 'return') this.callErrors.inc({ result: e.result, reason: e.reason });
    const d = e.durations;
    this.duration.observe({ phase: 'queue' }, d.queueMs / 1000);
    this.duration.observe({ phase: 'vm' }, d.vmMs / 1000);
    this.duration.observe({ phase: 'apply' }, d.applyMs / 1000);
    this.duration.observe({ phase: 'total' }, d.totalMs / 1000);
    this.gas.observe({ result: e.result }, Number(e.gasUsed));
    this.roundTrips.observe(e.roundTrips);
    for (const [method, c] of Object.entries(e.hostCalls)) {
      const call = PROTOCOL_METHODS.has(method) ? method : 'other';
      this.hostCalls.inc({ call }, c.count);
      this.hostCallBytes.inc({ call, direction: 'request' }, c.requestBytes);
      this.hostCallBytes.inc({ call, direction: 'response' }, c.responseBytes);
    }
  }

  /** Stops listening to the host (the registry keeps its values). */
  close(): void {
    for (const off of this.offs.splice(0)) off();
  }
}
