/**
 * The node's side of remote workers: a slot table filled by worker registrations (the Runtime endpoint,
 * src/worker/endpoint.ts) and a `Launcher` (kind 'remote') whose VMs run on those workers.
 *
 * launch() picks the registered worker with the most free slots, opens TLS to it (verifying the worker's
 * certificate against the operator CA, and presenting the node's own), sends the slot preamble with a fresh
 * per-VM secret (src/worker/preamble.ts), and hands back a VmHandle only once its connection has passed
 * `proveConnection`: the VM on the far machine proved the secret to the node itself, not only to the worker. A
 * worker whose VM does not (a wrong hello, or none in time) is passed over like one that cannot start a VM.
 * The executor then treats it like a local VM: same deadlines, same crash and protocol-error rules. The VM's
 * bytes come out of the worker's DATA frames, and a slot that ends carries the VM's exit status and last
 * stderr line in the worker's EXIT frame (relay.ts), so a crash reads like a local one; a slot that closes
 * without it is a worker that went away. stop() closes the connection, which makes the worker SIGTERM, then
 * SIGKILL, its VM.
 *
 * Table rules: each entry belongs to the identity that registered it (its client certificate's fingerprint, or
 * the node's token). A registration from an address already in the table by the same identity with another
 * worker instance id replaces it (the worker restarted); the same instance only refreshes it; by another
 * identity, while the entry lives, it is refused (WorkerAddressHeld): an authenticated worker cannot evict
 * another. An entry not refreshed for `expireAfterMs`, or whose connections fail, is dropped and logged.
 * Dropping an entry closes its slots' connections: an idle pool VM's connection is paused (the session waits
 * for work) and would not notice a dead worker by itself.
 */
import { connect as tlsConnect, checkServerIdentity, type TLSSocket } from 'node:tls';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';
import { HostlinkError } from '../errors.js';
import { canonicalHost, isUnspecifiedHost, unspecifiedWorkerAddress } from './address.js';
import { newVmSecret } from '../protocol/hello-proof.js';
import { performance } from 'node:perf_hooks';
import type { HostEvents } from '../host/events.js';
import type { VmCrash } from '../host/job.js';
import { reapWithin, type Launcher, type VmExit, type VmHandle, type VmRole } from '../host/launcher.js';
import { proveConnection } from '../host/vm-gate.js';
import { parseAddress } from '../transport/address.js';
import { encodeRequest, parseReply, readPreamble, SLOT_STATUS, type SlotReply } from './preamble.js';
import { RelayStream, type RelayExit } from './relay.js';
import type { TlsMaterial } from './tls.js';

export interface WorkerRegistration {
  /** Where the worker serves its slots (HOST:PORT), the `server_addr` of its Initialize. */
  addr: string;
  slots: number;
  /** Random per worker process: a new one at the same address is a restarted worker. */
  instance: string;
  /** Who registered (the client certificate's SHA-256 fingerprint, or the token): only it may renew or replace the entry. */
  identity: string;
}

/** A registration refused because a live entry of another identity holds the address (a HostlinkError 'usage'). */
export class WorkerAddressHeld extends HostlinkError {
  constructor(message: string) {
    super('usage', message);
  }
}

/**
 * Most live addresses one identity (a certificate, or the token) may hold. Each entry is a place the node dials
 * and waits on: one compromised worker machine registered 5,000 addresses of 1,024 slots each in 3.2 s, and every
 * launch that picked one of them waited up to 5 s before trying another. Workers that share the token are one
 * identity: beyond this many, give them certificates of their own.
 */
export const MAX_ADDRESSES_PER_IDENTITY = 64;

/** A registration refused because its identity already holds MAX_ADDRESSES_PER_IDENTITY live addresses. */
export class WorkerAddressesFull extends HostlinkError {
  constructor(message: string) {
    super('usage', message);
  }
}

export interface RemoteLauncherOptions {
  tls: TlsMaterial;
  /** Sent in the preamble to workers that accept a token instead of a client certificate. */
  token?: string;
  /** The name the workers' certificates carry; default: the host part of the address each registered. */
  serverName?: string;
  /**
   * How long launch() may take to get a VM: waiting for a free slot (no worker registered yet, or all busy) and
   * the attempts on workers together. An attempt under way when it runs out is abandoned, without blaming its
   * worker. Default 30 000 ms.
   */
  slotWaitMs?: number;
  /** How long a worker may take to start a VM and answer the preamble. Default 30 000 ms. */
  replyTimeoutMs?: number;
  /** A registration not refreshed for this long is dropped, and its slots' connections closed. Default 10 000 ms (workers renew every 2 s). */
  expireAfterMs?: number;
  log?: (line: string) => void;
  /** Where to report vm.launched and vm.exited (with the worker's address), as local launchers do. */
  events?: HostEvents;
}

export interface WorkerSlots {
  addr: string;
  slots: number;
  inUse: number;
}

export interface RemoteLauncher extends Launcher {
  readonly kind: 'remote';
  /**
   * Adds, refreshes or replaces a worker's entry (called by the Runtime endpoint once credentials passed). Throws
   * WorkerAddressHeld when a live entry of another identity holds the address, and a HostlinkError 'usage' when
   * the address is not one to dial (not HOST:PORT, or the unspecified address).
   */
  register(registration: WorkerRegistration): 'added' | 'refreshed' | 'replaced';
  /** The slot table now. */
  workers(): WorkerSlots[];
  capacity(): number;
  close(): Promise<void>;
}

interface Entry {
  addr: string;
  /** The listener `addr` names, however it is written (workerAddressKey): what the table is keyed by. */
  key: string;
  host: string;
  port: number;
  slots: number;
  instance: string;
  identity: string;
  inUse: number;
  lastSeen: number;
  /** The worker answered busy (its VMs are still stopping), or could not start a VM: skip it until then. */
  busyUntil: number;
  /** It could not start a VM, or its VM did not prove the secret: passed over until then (START_FAILED_BACKOFF_MS). */
  startFailedUntil: number;
  /** Why, for the launch that finds every worker passed over. */
  startFailure: string;
  /** A launch gave up waiting for it (its attempt goes on): tried only when no other worker is free, until then. */
  deferUntil: number;
  dropped: boolean;
  /** Its slots' connections: closed when the entry is dropped or replaced, so their VMs end at once. */
  sockets: Set<TLSSocket>;
}

const DEFAULT_SLOT_WAIT_MS = 30_000;
/**
 * How long a worker may take to answer a slot's preamble (its VM started and proved the secret): a cold VM
 * takes well under a second. It was 30 s, three default deadlines: a worker that took TLS and then said nothing
 * timed out every call it was given for half a minute, a healthy worker idle beside it. Past it the worker is
 * dropped and the launch tries another.
 */
const DEFAULT_REPLY_TIMEOUT_MS = 5_000;
/**
 * How long a worker that could not start a VM is passed over: the launch tries the others meanwhile, instead of
 * failing the call while a healthy worker has free slots. When every worker is passed over, the launch fails
 * with the last reason.
 */
const START_FAILED_BACKOFF_MS = 10_000;
const DEFAULT_EXPIRE_AFTER_MS = 10_000;
const BUSY_BACKOFF_MS = 100;
/** How long launches try other workers first after one gave up waiting for this one (its attempt goes on). */
const ABANDONED_BACKOFF_MS = 2_000;
/**
 * How long a worker may take to accept TLS on a slot connection. Without it, a worker that accepted TCP and
 * then said nothing (a frozen or partitioned machine, or a hostile one) held the launch for good: with it
 * registered, every call of the pool timed out, even with a healthy worker beside it.
 */
export const SLOT_CONNECT_TIMEOUT_MS = 5_000;

/** A VM on a remote worker, as the executor sees it. */
class RemoteVm implements VmHandle {
  readonly connection: Promise<Socket>;
  readonly exited: Promise<VmExit>;
  private ended = false;
  private readonly relay: RelayStream;
  /** The worker's EXIT frame (relay.ts), once the slot closed; null when it never came (the worker went away). */
  private trailer: RelayExit | null = null;

  constructor(
    private readonly socket: TLSSocket,
    readonly pid: number,
    readonly addr: string,
    secret: Uint8Array,
  ) {
    this.relay = new RelayStream(socket);
    this.exited = this.relay.exit.then((trailer) => {
      this.ended = true;
      this.trailer = trailer;
      return { exitCode: trailer?.exitCode ?? null, signal: trailer?.signal ?? null };
    });
    this.connection = proveConnection(this.relay.asSocket(), secret);
    // readPreamble left the socket paused; the relay's reader is attached now, so nothing is lost.
    socket.resume();
    this.connection.catch(() => undefined); // launch() awaits it, and hands out only VMs that proved the secret
  }

  get hasExited(): boolean {
    return this.ended;
  }

  crash(): VmCrash {
    return { exitCode: this.trailer?.exitCode ?? null, signal: this.trailer?.signal ?? null, stderr: this.stderrTail(), worker: this.addr };
  }

  /** The VM's last stderr line as its worker reported it, with where it ran; or why the node knows nothing more. */
  stderrTail(): string {
    const where = `worker ${this.addr}, VM pid ${this.pid} there`;
    if (this.trailer !== null) return this.trailer.stderr ? `${this.trailer.stderr} (${where})` : `(${where})`;
    if (this.relay.broken !== undefined) return `${this.relay.broken} (${where})`;
    return `the remote VM slot closed without an exit status: the worker went away (${where})`;
  }

  /** Closing the slot's connection is the remote SIGTERM: the worker stops its VM, SIGKILL after its grace. */
  stop(_graceMs: number): Promise<VmExit> {
    if (!this.ended) this.socket.destroy();
    return this.exited;
  }

  async reap(graceMs: number): Promise<VmExit> {
    if (this.ended) return this.exited;
    return reapWithin(this, graceMs);
  }
}

/** Why one attempt on one worker gave no VM (an outcome, not an exception: attempt() decides what follows). */
interface SlotFailure {
  status: 'busy' | 'refused' | 'startFailed' | 'unreachable';
  message: string;
}

/** What a launch's wait for an attempt ends with when its slotWaitMs runs out first. */
const OUT_OF_TIME = Symbol('out of time');

export function remoteLauncher(options: RemoteLauncherOptions): RemoteLauncher {
  const table = new Map<string, Entry>();
  const open = new Set<TLSSocket>();
  const waiters = new Set<() => void>();
  const log = options.log ?? (() => undefined);
  const expireAfterMs = options.expireAfterMs ?? DEFAULT_EXPIRE_AFTER_MS;
  let closed = false;
  // Expiry is also checked on a timer: a worker that vanished must release its idle VMs even when nothing launches.
  const sweep = setInterval(() => live(), Math.max(250, Math.floor(expireAfterMs / 4)));
  sweep.unref();

  const wake = (): void => {
    for (const w of [...waiters]) w();
  };

  const drop = (entry: Entry, why: string): void => {
    if (entry.dropped) return;
    entry.dropped = true;
    if (table.get(entry.key) === entry) table.delete(entry.key);
    for (const s of entry.sockets) s.destroy();
    // After close() the attempts still under way end because their sockets were closed: not the worker's doing.
    if (!closed) log(`dropped worker ${entry.addr} from the slot table: ${why}`);
  };

  /** Passes a worker over for START_FAILED_BACKOFF_MS: launches try the others meanwhile. */
  const passOver = (entry: Entry, why: string): void => {
    entry.startFailure = why;
    entry.startFailedUntil = entry.busyUntil = Date.now() + START_FAILED_BACKOFF_MS;
    log(`passing over worker ${entry.addr} for ${START_FAILED_BACKOFF_MS} ms: ${why}`);
  };

  const live = (): Entry[] => {
    const now = Date.now();
    for (const e of [...table.values()]) if (now - e.lastSeen > expireAfterMs) drop(e, `no registration for ${expireAfterMs} ms`);
    return [...table.values()];
  };

  const pick = (): Entry | undefined => {
    const now = Date.now();
    let best: Entry | undefined;
    let deferred: Entry | undefined;
    for (const e of live()) {
      if (e.busyUntil > now || e.inUse >= e.slots) continue;
      if (e.deferUntil > now) {
        if (deferred === undefined || e.slots - e.inUse > deferred.slots - deferred.inUse) deferred = e;
        continue;
      }
      if (best === undefined || e.slots - e.inUse > best.slots - best.inUse) best = e;
    }
    return best ?? deferred;
  };

  /** One slot connection on one worker: TLS, preamble, reply, each bounded by its own timeout. */
  const openSlot = (entry: Entry): Promise<RemoteVm | SlotFailure> =>
    new Promise((resolve) => {
      const secret = newVmSecret();
      const name = options.serverName;
      const socket = tlsConnect({
        host: entry.host,
        port: entry.port,
        ca: options.tls.ca,
        cert: options.tls.cert,
        key: options.tls.key,
        minVersion: 'TLSv1.2',
        ...(name !== undefined
          ? { servername: name, checkServerIdentity: (_host: string, cert) => checkServerIdentity(name, cert) }
          : isIP(entry.host) === 0
            ? { servername: entry.host }
            : {}),
      });
      open.add(socket);
      // Counted with the worker's slots from the start: dropping the worker closes this attempt too.
      entry.sockets.add(socket);
      socket.once('close', () => {
        open.delete(socket);
        entry.sockets.delete(socket);
      });
      let settled = false;
      const fail = (e: SlotFailure): void => {
        clearTimeout(connectTimer);
        if (settled) return;
        settled = true;
        socket.destroy();
        resolve(e);
      };
      const connectTimer = setTimeout(
        () => fail({ status: 'unreachable', message: `worker ${entry.addr} did not complete TLS within ${SLOT_CONNECT_TIMEOUT_MS} ms` }),
        SLOT_CONNECT_TIMEOUT_MS,
      );
      socket.once('error', (e) => fail({ status: 'unreachable', message: `cannot reach worker ${entry.addr}: ${e.message}` }));
      socket.once('close', () => fail({ status: 'unreachable', message: `worker ${entry.addr} closed the connection` }));
      socket.once('secureConnect', () => {
        clearTimeout(connectTimer);
        socket.on('error', () => undefined);
        socket.setNoDelay(true);
        socket.setKeepAlive(true, 10_000);
        socket.write(encodeRequest(secret, options.token ?? ''));
        readPreamble(socket, parseReply, options.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS).then(
          (reply: SlotReply) => {
            if (reply.status === SLOT_STATUS.ok) {
              if (settled) return; // failed meanwhile: the socket is closed already
              settled = true;
              if (entry.dropped) socket.destroy(); // the worker was dropped meanwhile: this VM ends at once
              resolve(new RemoteVm(socket, reply.pid, entry.addr, secret));
              return;
            }
            const kind = reply.status === SLOT_STATUS.busy ? 'busy' : reply.status === SLOT_STATUS.refused ? 'refused' : 'startFailed';
            fail({ status: kind, message: `worker ${entry.addr}: ${reply.message}` });
          },
          (e: Error) => fail({ status: 'unreachable', message: `worker ${entry.addr} did not answer: ${e.message}` }),
        );
      });
    });

  /**
   * One attempt on one worker, to its own end (its connect, reply and hello timeouts): a VM that proved the
   * secret, or why not, with the worker dropped, passed over or backed off as the failure says. It runs to its
   * end even when the launch that made it has given up, so a worker that never answers is still found out and
   * dropped, not tried again by every launch (it would be: it has the most free slots).
   */
  const attempt = async (entry: Entry): Promise<RemoteVm | string> => {
    entry.inUse++;
    const vm = await openSlot(entry);
    if (!(vm instanceof RemoteVm)) {
      entry.inUse--;
      if (vm.status === 'busy') entry.busyUntil = Date.now() + BUSY_BACKOFF_MS;
      else if (vm.status === 'startFailed') passOver(entry, vm.message);
      else drop(entry, vm.message); // unreachable (no answer in time), TLS failure, or it refused our credentials
      return vm.message;
    }
    // The worker said its VM started; the VM must now prove the secret to the node (a wrong hello, or none
    // within the hello timeout, is refused). Until it has, the VM is not handed out: a worker that answers the
    // preamble with VMs that never prove themselves would otherwise fail every call it is given.
    const refused = await vm.connection.then(
      () => undefined,
      (e: unknown) => (e as Error).message,
    );
    if (refused !== undefined) {
      entry.inUse--;
      if (!entry.dropped) passOver(entry, `worker ${entry.addr}: ${refused}`);
      return `worker ${entry.addr}: ${refused}`;
    }
    void vm.exited.then(() => {
      entry.inUse--;
      wake();
    });
    return vm;
  };

  /** Resolves with `p`'s value, or OUT_OF_TIME at `giveUp` if that comes first. */
  const within = <T>(p: Promise<T>, giveUp: number): Promise<T | typeof OUT_OF_TIME> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<typeof OUT_OF_TIME>((resolve) => (timer = setTimeout(() => resolve(OUT_OF_TIME), Math.max(0, giveUp - Date.now()))));
    return Promise.race([p, late]).finally(() => clearTimeout(timer));
  };

  const waitForChange = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiters.add(done);
    });

  return {
    kind: 'remote',

    register(registration) {
      const { host, port } = addressParts(registration.addr);
      // Where the node dials the worker's VMs: 0.0.0.0 or :: (any spelling) dials the node's own loopback, so it
      // would be a second entry for a listener there, not a worker.
      if (isUnspecifiedHost(host)) throw new HostlinkError('usage', unspecifiedWorkerAddress(registration.addr));
      // One listener, one entry: 127.1:7000, [::ffff:7f00:1]:7000 and localhost:07000 all dial 127.0.0.1:7000.
      const key = workerAddressKey(host, port);
      let existing = table.get(key);
      if (existing !== undefined && Date.now() - existing.lastSeen > expireAfterMs) {
        drop(existing, `no registration for ${expireAfterMs} ms`);
        existing = undefined;
      }
      if (existing !== undefined && existing.identity !== registration.identity) {
        throw new WorkerAddressHeld(
          `worker address ${registration.addr} is held by a live registration made with another identity (${existing.identity}; this one: ${registration.identity}): ` +
            `give each worker its own --advertise address, or wait until the other worker has been stopped for ${expireAfterMs} ms`,
        );
      }
      if (existing !== undefined && existing.instance === registration.instance) {
        existing.lastSeen = Date.now();
        existing.slots = registration.slots;
        wake();
        return 'refreshed';
      }
      if (existing === undefined) {
        let held = 0;
        for (const e of live()) if (e.identity === registration.identity) held++;
        if (held >= MAX_ADDRESSES_PER_IDENTITY) {
          throw new WorkerAddressesFull(
            `${registration.identity} already holds ${held} live worker addresses, the most one identity may hold (${MAX_ADDRESSES_PER_IDENTITY}): ` +
              `give each worker its own certificate, or wait until a stopped worker's registration lapses (${expireAfterMs} ms)`,
          );
        }
      }
      // A new instance of the same identity at the same address: the old one is gone (restarted), and so are its
      // VMs. A paused connection (an idle VM's) would not notice by itself until the node next wrote to it.
      if (existing !== undefined) drop(existing, 'it registered again (restarted)');
      table.set(key, {
        addr: registration.addr,
        key,
        host,
        port,
        slots: registration.slots,
        instance: registration.instance,
        identity: registration.identity,
        inUse: 0,
        lastSeen: Date.now(),
        busyUntil: 0,
        startFailedUntil: 0,
        startFailure: '',
        deferUntil: 0,
        dropped: false,
        sockets: new Set(),
      });
      log(`worker ${registration.addr} registered with ${registration.slots} slots${existing ? ' (replacing its previous registration)' : ''}`);
      wake();
      return existing ? 'replaced' : 'added';
    },

    workers() {
      return live().map((e) => ({ addr: e.addr, slots: e.slots, inUse: e.inUse }));
    },

    capacity() {
      let free = 0;
      for (const e of live()) free += Math.max(0, e.slots - e.inUse);
      return free;
    },

    async launch(role: VmRole): Promise<VmHandle> {
      const slotWaitMs = options.slotWaitMs ?? DEFAULT_SLOT_WAIT_MS;
      const giveUp = Date.now() + slotWaitMs;
      /** What the last attempt that ran out of time was waiting for, to say so. */
      let abandoned: string | undefined;
      const outOfTime = (): HostlinkError => {
        const n = table.size;
        return new HostlinkError(
          'vm_crash',
          n === 0
            ? 'no remote worker is registered: start `hostlink worker --runtime ADDR` on a worker machine'
            : `no remote VM slot is free on the ${n} registered worker(s) within ${slotWaitMs} ms${abandoned !== undefined ? ` (${abandoned})` : ''}: add workers or slots, or lower poolSize`,
        );
      };
      for (;;) {
        if (closed) throw new HostlinkError('vm_crash', 'the remote launcher is closed');
        const entry = pick();
        const all = entry === undefined ? live() : [];
        if (all.length > 0 && all.every((e) => e.startFailedUntil > Date.now())) {
          // No worker can start one now: say why (the latest reason).
          throw new HostlinkError('vm_crash', all.reduce((a, b) => (b.startFailedUntil > a.startFailedUntil ? b : a)).startFailure);
        }
        // Checked before every attempt, not only while no worker is free: attempts on workers that fail (each up to
        // SLOT_CONNECT_TIMEOUT_MS plus the reply timeout) would otherwise go on past slotWaitMs, one after another.
        const left = giveUp - Date.now();
        if (left <= 0) throw outOfTime();
        if (entry === undefined) {
          await waitForChange(Math.min(left, BUSY_BACKOFF_MS));
          continue;
        }
        const pending = attempt(entry);
        const vm = await within(pending, giveUp);
        if (vm === OUT_OF_TIME) {
          // The attempt goes on to its own end (and judges the worker); a VM it still starts is stopped. Meanwhile
          // launches try other workers first.
          abandoned = `worker ${entry.addr} had not given a VM that proved the secret yet`;
          entry.deferUntil = Date.now() + ABANDONED_BACKOFF_MS;
          void pending.then((late) => (late instanceof RemoteVm ? late.stop(0) : undefined));
          continue;
        }
        if (!(vm instanceof RemoteVm)) continue;
        const born = performance.now();
        options.events?.emit('vm.launched', { pid: vm.pid, mode: role, worker: vm.addr });
        void vm.exited.then((exit) => {
          options.events?.emit('vm.exited', { pid: vm.pid, mode: role, worker: vm.addr, ...exit, lifetimeMs: performance.now() - born });
        });
        return vm;
      }
    },

    async close() {
      closed = true;
      clearInterval(sweep);
      wake();
      for (const s of open) s.destroy();
      table.clear();
    },
  };
}

/**
 * The listener a worker address names, however it is written (canonicalHost, and the numeric port).
 * Registrations are keyed by it, so another identity cannot hold the same listener by writing its address
 * another way. (A DNS name that resolves to another worker's IP is not caught: advertise IP addresses.)
 */
export function workerAddressKey(host: string, port: number): string {
  return `${canonicalHost(host)}:${port}`;
}

function addressParts(addr: string): { host: string; port: number } {
  const a = parseAddress(addr);
  if (a.kind !== 'tcp') throw new HostlinkError('usage', `a worker address must be HOST:PORT (got ${addr})`);
  return { host: a.host, port: a.port };
}
