/**
 * Round-trip latency of the VM's host channel against the physical floor (a C client and a C echo server),
 * over a unix socket and TCP loopback. Each client runs in its own process, as the real VM does; the Node
 * echo server runs in this process on FrameReader, and Hostlink's own host session (the gate checking the
 * hello proof, then serveSession answering storage_read from a backend) runs in this process too, once with
 * the reads it uses now (a reused buffer) and once with the 'data' events it used before. The product target
 * is a median at most 1.3x the C floor for the VM's native channel against Hostlink's session.
 *
 * Where the two ends run decides the figure more than anything they do: a wake-up on the CPU the waker runs on is a
 * context switch (a few us), one on another CPU that sleeps can take tens of us on a virtual machine (the host
 * has to wake that virtual CPU). Unpinned, the scheduler picks either from run to run, so every row is measured
 * twice with placement fixed (`taskset`): both ends on one CPU (the round trip is then the work of both sides,
 * close to their CPU time), and client and server on different CPUs (each wake-up crosses CPUs). Without
 * taskset or a second CPU the rows run unpinned, and say so.
 * Standalone: `node dist/bench/channel.js [ITERATIONS [ROUNDS]]` prints a table.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HostlinkError } from '../src/errors.js';
import { serveSession, Session } from '../src/host/session.js';
import { admitVm } from '../src/host/vm-gate.js';
import { FrameReader, encodeFrame } from '../src/protocol/frame.js';
import { MAX_FRAME_BYTES } from '../src/protocol/generated.js';
import { newVmSecret } from '../src/protocol/hello-proof.js';
import { channelInfo } from '../src/transport/connect.js';
import { sessionIoMode, socketAddon, type SessionIoOptions } from '../src/transport/session-io.js';
import { startWorkerSessionServer } from './session-worker.js';
import { benchSessionWork, listenFresh } from './bench-server.js';
import { startPolledEchoServer } from './polled-echo.js';

export type BenchTransport = 'unix' | 'tcp';

/**
 * Where client and server run: 'same-cpu' both on one CPU (this process's threads too); 'split' servers (and this
 * process) on that CPU, clients on another; 'unpinned' where the scheduler puts them.
 */
export type Placement = 'same-cpu' | 'split' | 'unpinned';

export interface ChannelBenchRow {
  transport: BenchTransport;
  placement: Placement;
  client: 'c' | 'native' | 'js';
  /**
   * c: C echo; node: Node echo on FrameReader; session: Hostlink's session as the host serves it (the socket
   * addon where it is built, transport/session-io.ts); session-libuv: the same on libuv's stream handle (before);
   * session-stream-writes: that, writing through socket.write; session-stream: that, with 'data' reads and
   * socket.write (the first session); session-worker: the prototype of the session in a worker thread with
   * blocking reads (session-worker.ts); node-polled: a Node echo on the session's socket addon, without the
   * session (polled-echo.ts).
   */
  server: 'c' | 'node' | 'node-polled' | 'session' | 'session-libuv' | 'session-stream-writes' | 'session-stream' | 'session-worker';
  medianUs: number;
  p99Us: number;
  /** median / the C client<->C server median on the same transport and placement; undefined without a C compiler. */
  ratioToFloor: number | undefined;
  /**
   * Session rows: CPU (user + sys, all threads, from the OS) the serving process spent per request while the
   * client ran, warm-up included; undefined for servers in other processes.
   */
  serverCpuUs?: number;
}

export interface ChannelBenchResult {
  iterations: number;
  warmup: number;
  payloadBytes: number;
  rows: ChannelBenchRow[];
  /** Skipped parts and conditions that matter for reading the numbers (load, missing compiler or addon). */
  notes: string[];
}

const PAYLOAD_BYTES = 32;
const CLIENT_JS = fileURLToPath(new URL('./channel-client.js', import.meta.url));

// The read both C programs use.
const C_READ = String.raw`
/* Sleeps in poll(), as the VM's native channel does: a task asleep in a unix socket's read is also woken each
 * time the peer reads what it wrote, which is work a floor should not count. */
static int rd(int fd, char *p, size_t n) {
  while (n) {
    ssize_t r = recv(fd, p, n, MSG_DONTWAIT);
    if (r < 0 && errno == EAGAIN) { struct pollfd q = { fd, POLLIN, 0 }; if (poll(&q, 1, -1) < 0 && errno != EINTR) return -1; continue; }
    if (r <= 0) { if (r < 0 && errno == EINTR) continue; return -1; }
    p += r; n -= (size_t)r;
  }
  return 0;
}
`;

// Echo server: u32 LE length + body in, the same frame out. Serves one connection at a time.
const C_SERVER = String.raw`
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
static char buf[1 << 20];
${C_READ}
static int wr(int fd, const char *p, size_t n) { while (n) { ssize_t r = write(fd, p, n); if (r <= 0) return -1; p += r; n -= (size_t)r; } return 0; }
int main(int argc, char **argv) {
  int ls, one = 1;
  if (argc > 2 && !strcmp(argv[1], "unix")) {
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, argv[2], sizeof a.sun_path - 1);
    ls = socket(AF_UNIX, SOCK_STREAM, 0); unlink(argv[2]);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 8)) { perror("listen"); return 1; }
    printf("unix://%s\n", argv[2]);
  } else {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t l = sizeof a;
    ls = socket(AF_INET, SOCK_STREAM, 0); setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 8)) { perror("listen"); return 1; }
    getsockname(ls, (struct sockaddr *)&a, &l);
    printf("127.0.0.1:%d\n", ntohs(a.sin_port));
  }
  fflush(stdout);
  for (;;) {
    int c = accept(ls, NULL, NULL);
    if (c < 0) continue;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    unsigned n;
    while (rd(c, buf, 4) == 0) {
      memcpy(&n, buf, 4);
      if (n > sizeof buf - 4 || rd(c, buf + 4, n) || wr(c, buf, n + 4)) break;
    }
    close(c);
  }
}
`;

// Client: same measurement as channel-client.ts, in C. Prints "median_us p99_us".
const C_CLIENT = String.raw`
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
${C_READ}
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
static double now_us(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }
int main(int argc, char **argv) {
  /* argv: unix PATH | tcp HOST PORT, then ITERATIONS WARMUP PAYLOAD */
  int fd, one = 1, k;
  if (!strcmp(argv[1], "unix")) {
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, argv[2], sizeof a.sun_path - 1);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
    k = 3;
  } else {
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
    inet_pton(AF_INET, argv[2], &a.sin_addr);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) { perror("connect"); return 1; }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    k = 4;
  }
  int iters = atoi(argv[k]), warm = atoi(argv[k + 1]);
  unsigned len = (unsigned)atoi(argv[k + 2]);
  char *buf = calloc(1, len + 4);
  double *s = malloc(sizeof(double) * iters);
  memcpy(buf, &len, 4);
  for (int i = 0; i < warm + iters; i++) {
    double t0 = now_us();
    if (write(fd, buf, len + 4) != (ssize_t)(len + 4) || rd(fd, buf, len + 4)) { perror("io"); return 1; }
    if (i >= warm) s[i - warm] = now_us() - t0;
  }
  qsort(s, iters, sizeof *s, cmp);
  printf("%.3f %.3f\n", s[iters / 2], s[(int)(iters * 0.99)]);
  return 0;
}
`;

function hasCompiler(): boolean {
  return spawnSync('cc', ['--version'], { stdio: 'ignore' }).status === 0;
}

function compile(dir: string, name: string, source: string): string {
  const src = join(dir, `${name}.c`);
  const exe = join(dir, name);
  writeFileSync(src, source);
  const r = spawnSync('cc', ['-O2', '-o', exe, src], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cc ${name}.c failed: ${r.stderr}`);
  return exe;
}

/** The CPUs each end runs on in a placement (undefined: not pinned). */
interface Cpus {
  server: number | undefined;
  client: number | undefined;
}

/** The command that runs `cmd args` on `cpu` (taskset execs the program: its pid is the program's). */
function onCpu(cpu: number | undefined, cmd: string, args: string[]): [string, string[]] {
  return cpu === undefined ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]];
}

/** Pins every thread of this process to `cpus` (a taskset list); false if that failed. */
function pinSelf(cpus: string): boolean {
  return spawnSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' }).status === 0;
}

/** The CPUs this process may run on (Linux: /proc/self/status), as a taskset list and its first two CPUs. */
function allowedCpus(): { list: string; first: number[] } | undefined {
  let status: string;
  try {
    status = readFileSync('/proc/self/status', 'utf8');
  } catch {
    return undefined;
  }
  const list = /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1];
  if (list === undefined) return undefined;
  const first: number[] = [];
  for (const part of list.split(',')) {
    const [a, b = a] = part.split('-').map(Number);
    for (let c = a!; c <= b! && first.length < 2; c++) first.push(c);
  }
  return { list, first };
}

/**
 * The placements this machine can measure, with the CPUs each uses (the first two this process may run on),
 * the list to restore afterwards, and a note when only 'unpinned' is possible.
 */
function placements(): { list: [Placement, Cpus][]; restore?: string; note?: string } {
  const unpinned: [Placement, Cpus][] = [['unpinned', { server: undefined, client: undefined }]];
  const allowed = allowedCpus();
  if (allowed === undefined) return { list: unpinned, note: 'the CPUs this process may use are unknown here: rows unpinned' };
  const [a, b] = allowed.first;
  if (a === undefined || b === undefined) return { list: unpinned, note: 'one CPU: rows unpinned' };
  if (spawnSync('taskset', ['-c', String(a), 'true'], { stdio: 'ignore' }).status !== 0) {
    return { list: unpinned, note: 'taskset not available (util-linux): rows unpinned, their placement left to the scheduler' };
  }
  return {
    list: [
      ['same-cpu', { server: a, client: a }],
      ['split', { server: a, client: b }],
    ],
    restore: allowed.list,
  };
}

/** How long one client run may take before it is killed: far above any round trip this bench has seen. */
const clientTimeoutMs = (calls: number): number => 60_000 + calls * 2;

/** Runs a program to completion; resolves with its stdout (rejects on failure, or when it outlives `timeoutMs`). */
function run(command: string, commandArgs: string[], timeoutMs: number, env?: Record<string, string>, cpu?: number): Promise<string> {
  const [cmd, args] = onCpu(cpu, command, commandArgs);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) });
    let out = '';
    let err = '';
    // A server that stops answering must fail its row, not hang the whole bench.
    const timer = setTimeout(() => {
      err += `(killed after ${timeoutMs} ms without finishing)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} exited with ${code}: ${err}`));
    });
  });
}

/** Starts the C echo server; resolves with its address and a stop function. */
function startCServer(exe: string, transport: BenchTransport, sockPath: string, cpu: number | undefined): Promise<{ address: string; stop: () => void }> {
  const [cmd, args] = onCpu(cpu, exe, transport === 'unix' ? ['unix', sockPath] : ['tcp']);
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      if (buf.includes('\n')) resolve({ address: buf.trim(), stop: () => child.kill('SIGKILL') });
    });
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`C echo server exited (${code})`)));
  });
}

/** The real host's shape: a Node server decoding frames with FrameReader. */
async function startNodeServer(transport: BenchTransport, sockPath: string): Promise<{ address: string; stop: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.setNoDelay(true);
    sock.on('close', () => sockets.delete(sock));
    const reader = new FrameReader();
    sock.on('data', (chunk) => {
      for (const body of reader.push(chunk)) sock.write(encodeFrame(body));
    });
  });
  const address = await listenFresh(server, transport, sockPath);
  const stop = () => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { address, stop };
}

/**
 * Hostlink's host session on a fresh listener behind the gate, for one VM connection: the hello must prove
 * `secret`, next_message hands out one job, storage_read answers a PAYLOAD_BYTES value from the backend.
 */
async function startSessionServer(transport: BenchTransport, sockPath: string, secret: Uint8Array, io: SessionIoOptions): Promise<{ address: string; stop: () => Promise<void> }> {
  const server: Server = createServer({ noDelay: true });
  const address = await listenFresh(server, transport, sockPath);
  const { backend, work } = benchSessionWork(PAYLOAD_BYTES);
  const gate = admitVm(server, secret);
  let socket: Socket | undefined;
  const served = gate.connection.then((s) => {
    socket = s;
    return serveSession(new Session(backend, { pool: work }), s, MAX_FRAME_BYTES, io);
  });
  served.catch(() => undefined);
  const stop = async (): Promise<void> => {
    gate.close(new HostlinkError('internal', 'bench finished'));
    socket?.destroy();
    await served.catch(() => undefined);
  };
  return { address, stop };
}

async function runCClient(exe: string, address: string, iterations: number, warmup: number, cpu: number | undefined): Promise<Sample> {
  const target = address.startsWith('unix://') ? ['unix', address.slice('unix://'.length)] : ['tcp', ...address.split(':')];
  const [median, p99] = (await run(exe, [...target, String(iterations), String(warmup), String(PAYLOAD_BYTES)], clientTimeoutMs(iterations + warmup), undefined, cpu)).trim().split(' ').map(Number);
  return { medianUs: median!, p99Us: p99! };
}

async function runNodeClient(impl: 'native' | 'js', address: string, iterations: number, warmup: number, cpu: number | undefined, secret?: Uint8Array): Promise<Sample> {
  const args = [CLIENT_JS, impl, address, String(iterations), String(warmup), String(PAYLOAD_BYTES), ...(secret ? ['session'] : [])];
  const out = await run(process.execPath, args, clientTimeoutMs(iterations + warmup), secret ? { HOSTLINK_BENCH_SECRET: Buffer.from(secret).toString('hex') } : undefined, cpu);
  const r = JSON.parse(out) as { kind: string; medianUs: number; p99Us: number };
  if (r.kind !== impl) throw new Error(`asked for the ${impl} channel, got ${r.kind}`);
  return r;
}

/**
 * Runs every client `rounds` times, interleaved (C floor, native, js, then again), and reports the median of
 * the per-round medians and p99s: on a shared 2-core machine a burst of someone else's load then skews one
 * round of every row instead of one row. Every row once per placement (see the file comment). Takes about
 * 2 x placements x rounds x (iterations x 10 us + 1 s).
 */
export async function benchChannel(opts: { iterations: number; rounds?: number }): Promise<ChannelBenchResult> {
  const iterations = Math.max(100, Math.floor(opts.iterations));
  const rounds = Math.max(1, Math.floor(opts.rounds ?? 3));
  const warmup = Math.min(2000, Math.ceil(iterations / 10));
  const notes: string[] = [];
  const info = channelInfo();
  const impls: ('native' | 'js')[] = info.native.available ? ['native', 'js'] : ['js'];
  if (!info.native.available) notes.push(`native channel skipped: ${info.native.reason}`);
  const cc = hasCompiler();
  if (!cc) notes.push('no C compiler (cc): the C floor and the C echo server are skipped; ratios are unavailable');
  const where = placements();
  if (where.note !== undefined) notes.push(where.note);
  const split = where.list.find(([p]) => p === 'split')?.[1];
  if (split !== undefined) notes.push(`pinned with taskset: one CPU = CPU ${split.server}; two CPUs = CPU ${split.server} (servers, this process) and CPU ${split.client} (clients)`);
  notes.push(`median of ${rounds} interleaved rounds; load average before the run ${loadavg()[0]!.toFixed(2)}`);

  const dir = mkdtempSync(join(tmpdir(), 'hostlink-bench-channel-'));
  const rows: ChannelBenchRow[] = [];
  try {
    const cServer = cc ? compile(dir, 'echo_server', C_SERVER) : undefined;
    const cClient = cc ? compile(dir, 'echo_client', C_CLIENT) : undefined;
    const polled = socketAddon();
    const pollAddon = info.native.available ? polled.addon : undefined;
    if (pollAddon === undefined) notes.push(`${SERVER_LABELS['node-polled']} skipped: ${polled.reason ?? 'no native channel'}`);
    for (const [placement, cpus] of where.list) {
      // This process serves the Node and session rows: its threads (and the worker it starts) go where servers go.
      if (cpus.server !== undefined && !pinSelf(String(cpus.server))) throw new Error('taskset could not pin this process');
      try {
        for (const transport of ['unix', 'tcp'] as const) {
          rows.push(...(await measureTransport({ transport, placement, cpus, dir, cServer, cClient, pollAddon, impls, nativeSession: info.native.available, iterations, warmup, rounds, notes })));
        }
      } finally {
        if (cpus.server !== undefined && where.restore !== undefined) pinSelf(where.restore);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { iterations, warmup, payloadBytes: PAYLOAD_BYTES, rows, notes };
}

/** Every client against every server on one transport, in one placement. */
async function measureTransport(o: {
  transport: BenchTransport;
  placement: Placement;
  cpus: Cpus;
  dir: string;
  cServer: string | undefined;
  cClient: string | undefined;
  pollAddon: Parameters<typeof startPolledEchoServer>[0] | undefined;
  impls: ('native' | 'js')[];
  nativeSession: boolean;
  iterations: number;
  warmup: number;
  rounds: number;
  notes: string[];
}): Promise<ChannelBenchRow[]> {
  const { transport, placement, cpus, dir, cClient, impls, iterations, warmup } = o;
  const c = o.cServer ? await startCServer(o.cServer, transport, join(dir, `c-${transport}.sock`), cpus.server) : undefined;
  const node = await startNodeServer(transport, join(dir, `node-${transport}.sock`));
  const rows: ChannelBenchRow[] = [];
  try {
    // A prototype's failure drops its row (with a note); any other failure fails the bench.
    type Job = { client: ChannelBenchRow['client']; server: ChannelBenchRow['server']; run: () => Promise<Sample>; prototype?: boolean };
    const jobs: Job[] = [];
    if (c && cClient) {
      jobs.push({ client: 'c', server: 'c', run: () => runCClient(cClient, c.address, iterations, warmup, cpus.client) });
      for (const impl of impls) jobs.push({ client: impl, server: 'c', run: () => runNodeClient(impl, c.address, iterations, warmup, cpus.client) });
    }
    for (const impl of impls) jobs.push({ client: impl, server: 'node', run: () => runNodeClient(impl, node.address, iterations, warmup, cpus.client) });
    // Hostlink's own session (what the product target is about), now, with the previous socket.write writes and
    // with the first 'data' reads too, and
    // the worker-thread prototype: each started for its run, with a fresh secret the client must prove.
    const sessionJob = (server: ChannelBenchRow['server'], start: (secret: Uint8Array) => Promise<{ address: string; stop: () => Promise<void> }>): Job => ({
      client: 'native',
      server,
      prototype: server === 'session-worker',
      run: async () => {
        const secret = newVmSecret();
        const s = await start(secret);
        try {
          return await withServerCpu(() => runNodeClient('native', s.address, iterations, warmup, cpus.client, secret), iterations + warmup);
        } finally {
          await s.stop();
        }
      },
    });
    if (o.nativeSession) {
      jobs.push(sessionJob('session', (secret) => startSessionServer(transport, join(dir, `session-${transport}.sock`), secret, {})));
      jobs.push(sessionJob('session-libuv', (secret) => startSessionServer(transport, join(dir, `session-${transport}.sock`), secret, { io: 'libuv', readMode: 'user-buffer', writeMode: 'handle' })));
      jobs.push(sessionJob('session-stream-writes', (secret) => startSessionServer(transport, join(dir, `session-${transport}.sock`), secret, { io: 'libuv', readMode: 'user-buffer', writeMode: 'stream' })));
      jobs.push(sessionJob('session-stream', (secret) => startSessionServer(transport, join(dir, `session-${transport}.sock`), secret, { io: 'libuv', readMode: 'stream', writeMode: 'stream' })));
      jobs.push(sessionJob('session-worker', (secret) => startWorkerSessionServer(transport, join(dir, `worker-${transport}.sock`), secret, PAYLOAD_BYTES)));
    }
    const addon = o.pollAddon;
    if (addon !== undefined) {
      jobs.push({
        client: 'native',
        server: 'node-polled',
        prototype: true,
        run: async () => {
          const s = await startPolledEchoServer(addon, transport, join(dir, `polled-${transport}.sock`));
          try {
            return await withServerCpu(() => runNodeClient('native', s.address, iterations, warmup, cpus.client), iterations + warmup);
          } finally {
            await s.stop();
          }
        },
      });
    }
    const samples: Sample[][] = jobs.map(() => []);
    const failed = new Set<Job>();
    for (let round = 0; round < o.rounds; round++) {
      for (const [i, job] of jobs.entries()) {
        if (failed.has(job)) continue;
        try {
          samples[i]!.push(await job.run());
        } catch (e) {
          if (!job.prototype) throw e;
          failed.add(job);
          const lines = (e as Error).message.split('\n').map((l) => l.trim());
          // The client's uncaught error ("SomethingError: ...") or the timeout's kill, else the first line.
          const why = lines.find((l) => /^\w*Error\b/.test(l) || l.includes('killed after')) ?? lines[0];
          o.notes.push(`${SERVER_LABELS[job.server]} (${transport}, ${PLACEMENT_LABELS[placement]}) failed and is left out: ${why}`);
        }
      }
    }
    const floor = jobs[0]?.client === 'c' ? median(samples[0]!.map((x) => x.medianUs)) : undefined;
    for (const [i, job] of jobs.entries()) {
      if (failed.has(job)) continue;
      const medianUs = median(samples[i]!.map((x) => x.medianUs));
      const cpu = samples[i]!.map((x) => x.serverCpuUs).filter((x): x is number => x !== undefined);
      rows.push({
        transport,
        placement,
        client: job.client,
        server: job.server,
        medianUs,
        p99Us: median(samples[i]!.map((x) => x.p99Us)),
        ratioToFloor: floor === undefined ? undefined : medianUs / floor,
        ...(cpu.length ? { serverCpuUs: median(cpu) } : {}),
      });
    }
  } finally {
    c?.stop();
    await node.stop();
  }
  return rows;
}

type Sample = { medianUs: number; p99Us: number; serverCpuUs?: number };

/**
 * Runs a client against a server in this process and adds the CPU this process spent per request meanwhile
 * (process.cpuUsage: every thread, so a worker-thread session counts too; the client is another process).
 */
async function withServerCpu(run: () => Promise<Sample>, requests: number): Promise<Sample> {
  const before = process.cpuUsage();
  const sample = await run();
  const spent = process.cpuUsage(before);
  return { ...sample, serverCpuUs: (spent.user + spent.system) / requests };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** One line per transport: the product target's figure and the same-run before/after of the session reads. */
function verdicts(r: ChannelBenchResult): string[] {
  const out: string[] = [];
  for (const placement of new Set(r.rows.map((x) => x.placement))) {
    for (const t of ['unix', 'tcp'] as const) {
      const row = (server: ChannelBenchRow['server']): ChannelBenchRow | undefined => r.rows.find((x) => x.transport === t && x.placement === placement && x.server === server);
      const now = row('session');
      const libuv = row('session-libuv');
      const before = row('session-stream-writes');
      const first = row('session-stream');
      if (!now) continue;
      const ratio = now.ratioToFloor === undefined ? 'no C floor' : `${now.ratioToFloor.toFixed(2)}x the C floor (target <= 1.3x: ${now.ratioToFloor <= 1.3 ? 'met' : 'NOT met'})`;
      const worker = row('session-worker');
      const polled = row('node-polled');
      const echo = r.rows.find((x) => x.transport === t && x.placement === placement && x.server === 'node' && x.client === 'native');
      const vs =
        (libuv && libuv !== now ? `; on libuv's stream handle (before) ${libuv.medianUs.toFixed(1)} us${libuv.ratioToFloor === undefined ? '' : ` (${libuv.ratioToFloor.toFixed(2)}x)`}, p99 ${libuv.p99Us.toFixed(1)} us` : '') +
        (before ? `; with socket.write writes ${before.medianUs.toFixed(1)} us${before.ratioToFloor === undefined ? '' : ` (${before.ratioToFloor.toFixed(2)}x)`}` : '') +
        (first ? `; 'data' reads and socket.write ${first.medianUs.toFixed(1)} us${first.ratioToFloor === undefined ? '' : ` (${first.ratioToFloor.toFixed(2)}x)`}` : '') +
        (worker ? `; prototype worker-thread session ${worker.medianUs.toFixed(1)} us${worker.ratioToFloor === undefined ? '' : ` (${worker.ratioToFloor.toFixed(2)}x)`}, p99 ${worker.p99Us.toFixed(1)} us` : '') +
        (polled ? `; echo on the socket addon ${polled.medianUs.toFixed(1)} us${polled.ratioToFloor === undefined ? '' : ` (${polled.ratioToFloor.toFixed(2)}x)`} against Node's echo ${echo?.medianUs.toFixed(1) ?? '-'} us` : '');
      out.push(`${t}, ${PLACEMENT_LABELS[placement]}: native channel against Hostlink's session: median ${now.medianUs.toFixed(1)} us, p99 ${now.p99Us.toFixed(1)} us, ${ratio}${vs}`);
    }
  }
  return out;
}

const PLACEMENT_LABELS: Record<Placement, string> = {
  'same-cpu': 'one CPU',
  split: 'two CPUs',
  unpinned: 'unpinned',
};

/** The session row a figure elsewhere is built from: unix, both ends on one CPU when that was measured. */
export function sessionRoundTrip(r: ChannelBenchResult): ChannelBenchRow | undefined {
  const unix = r.rows.filter((x) => x.transport === 'unix' && x.server === 'session');
  return unix.find((x) => x.placement === 'same-cpu') ?? unix[0];
}

const SERVER_LABELS: Record<ChannelBenchRow['server'], string> = {
  c: 'C echo',
  node: 'Node FrameReader echo',
  'node-polled': 'Node FrameReader echo on the socket addon (no session)',
  session: `Hostlink session (${sessionIoMode().mode === 'polled' ? 'socket addon' : "libuv: the socket addon is not built"})`,
  'session-libuv': "Hostlink session, libuv stream handle (reused-buffer reads, handle writes: before)",
  'session-stream-writes': 'Hostlink session, libuv (reused-buffer reads, socket.write)',
  'session-stream': "Hostlink session, libuv ('data' reads, socket.write: first)",
  'session-worker': 'PROTOTYPE: session in a worker thread, blocking reads',
};

export function formatChannelBench(r: ChannelBenchResult): string {
  const head = ['transport', 'placement', 'client', 'server', 'median us', 'p99 us', 'x C floor', 'server CPU us/req'];
  const body = r.rows.map((x) => [
    x.transport,
    PLACEMENT_LABELS[x.placement],
    x.client === 'c' ? 'C (floor)' : `${x.client} channel`,
    SERVER_LABELS[x.server],
    x.medianUs.toFixed(1),
    x.p99Us.toFixed(1),
    x.ratioToFloor === undefined ? '-' : x.ratioToFloor.toFixed(2),
    x.serverCpuUs === undefined ? '-' : x.serverCpuUs.toFixed(1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 4 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [
    `host channel round trip: ${r.payloadBytes}-byte payload, ${r.iterations} sequential calls per run after ${r.warmup} warm-up (target: native channel against Hostlink session, median <= 1.3x C floor; session rows time storage_read of a ${r.payloadBytes}-byte key answered with a ${r.payloadBytes}-byte value)`,
    'placement: one CPU = client and server pinned to the same CPU (wake-ups are context switches: the round trip is the work of both ends); two CPUs = pinned to different CPUs (every wake-up crosses CPUs, which a virtual machine may make dear)',
    line(head),
    ...body.map(line),
    ...verdicts(r),
    ...r.notes.map((n) => `note: ${n}`),
  ].join('\n');
}

export function printChannelBench(r: ChannelBenchResult, out: NodeJS.WritableStream = process.stdout): void {
  out.write(formatChannelBench(r) + '\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  printChannelBench(await benchChannel({ iterations: Number(process.argv[2] ?? 20_000), rounds: Number(process.argv[3] ?? 3) }));
}
