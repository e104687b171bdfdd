/**
 * `hostlink serve`'s HTTP server (node:http): the REST API and JSON-RPC 2.0 over the operations in api.ts,
 * the event stream, /metrics, /healthz and the studio. It holds one Host for its whole life (and so the data
 * directory), bounds request bodies and calls in flight, and shuts down gracefully: stop accepting, let calls in
 * flight finish (each is bounded by its deadline), end the streams, close the VMs and the store.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { collectDefaultMetrics, Counter } from 'prom-client';
import type { Host } from '../host/host.js';
import type { HostLogger } from '../host/logger.js';
import { HostMetrics } from '../metrics/host-metrics.js';
import { Access, type ListenAddress } from './access.js';
import { Api } from './api.js';
import { BodyBudget, checkBodyHeaders, HttpError, lingerThenClose, readRouteBody, ReplyBudget, sendJson, statusOf, type BodySpec } from './http.js';
import { CallRecords } from './records.js';
import { rpc } from './rpc.js';
import { Studio } from './studio.js';
import { extend } from '../extend.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface ServeOptions {
  listen: ListenAddress;
  /** Required beyond loopback; when set, every route except /healthz and the studio's files needs it. */
  token?: string;
  /** Largest request body: deploys (a .wasm) and JSON bodies. */
  maxBodyBytes?: number;
  /** Calls and deploys in flight at once; more get 503 with Retry-After. */
  maxInFlight?: number;
  /** Longest call deadline a request may ask for, and the default. */
  deadlineMs?: number;
  /** Contract method names that get their own metric label (docs/metrics.md). */
  methodLabels?: number;
  logger: HostLogger;
}

export const SERVE_DEFAULTS = { maxBodyBytes: 12 * 1024 * 1024, maxInFlight: 64, deadlineMs: 10_000 } as const;
const JSON_BODY_BYTES = 1024 * 1024;
/** Bytes of request bodies still arriving, all together, at least (4 bodies at --max-body if that is more). */
export const BODY_BUDGET_BYTES = 64 * 1024 * 1024;
/** Bytes of answers not yet taken by their readers, all connections together (ReplyBudget). */
export const REPLY_BUDGET_BYTES = 64 * 1024 * 1024;
/** The API's answers are data, never a page: nothing may load, run or frame them. */
const API_CSP = "default-src 'none'; frame-ancestors 'none'; sandbox";
/** Open connections at once (docs/serve.md, "Who may call"). */
export const MAX_CONNECTIONS = 512;
/**
 * Requests in progress on one connection (pipelined, not yet answered). The first one past it is answered 503 with
 * `Connection: close`, after the answers before it; later ones are not run.
 */
export const MAX_REQUESTS_PER_CONNECTION = 8;

/** Fixed route names (the `route` metric label); anything else is "other". */
type Handler = (req: IncomingMessage, res: ServerResponse, params: string[], url: URL, body: unknown) => Promise<unknown>;
interface Route {
  method: 'GET' | 'POST';
  pattern: RegExp;
  name: string;
  /** Needs the token when one is configured. */
  auth: boolean;
  /** Counts against the in-flight limit. */
  heavy?: boolean;
  /** A page a link on another site may open (the studio); every other route serves this node's pages only. */
  page?: boolean;
  /** The body it takes, read before the request counts against the in-flight limit; the handler gets it. */
  body?: BodySpec;
  handler: Handler;
}

export class NodeServer {
  readonly url: string;
  private stopping: Promise<void> | null = null;
  private inFlight = 0;
  private readonly idle: (() => void)[] = [];

  private constructor(
    private readonly server: Server,
    private readonly host: Host,
    private readonly records: CallRecords,
    private readonly metrics: HostMetrics,
    private readonly logger: HostLogger,
  ) {
    const a = server.address() as AddressInfo;
    this.url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/`;
  }

  static async start(host: Host, options: ServeOptions): Promise<NodeServer> {
    const access = new Access(options.listen, options.token);
    const maxBody = options.maxBodyBytes ?? SERVE_DEFAULTS.maxBodyBytes;
    const maxInFlight = options.maxInFlight ?? SERVE_DEFAULTS.maxInFlight;
    const records = new CallRecords(host.events);
    const metrics = new HostMetrics(host, options.methodLabels === undefined ? {} : { methodLabels: options.methodLabels });
    collectDefaultMetrics({ register: metrics.registry });
    const httpRequests = new Counter({ name: 'hostlink_http_requests_total', help: 'HTTP requests, by route and status', labelNames: ['route', 'status'], registers: [metrics.registry] });
    const api = new Api(host, records, { deadlineMs: options.deadlineMs ?? SERVE_DEFAULTS.deadlineMs, examplesDir: join(ROOT, 'examples') });
    const studio = new Studio(join(ROOT, 'studio'));
    const routes = apiRoutes(api, metrics, maxBody, studio);
    const bodies = new BodyBudget(Math.max(BODY_BUDGET_BYTES, 4 * maxBody));
    /**
     * The route a request goes to, once everything its headers alone can refuse has passed: the target, the
     * method, who may call, and the body's type and declared size. Throws the HttpError to answer otherwise;
     * `matched` hears the route's name as soon as it is known (the metric label of a refusal too).
     */
    const admit = (req: IncomingMessage, matched: (name: string) => void = () => undefined): { route: Route; params: string[]; url: URL } => {
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://node');
      } catch {
        throw new HttpError(400, 'malformed request target');
      }
      const found = match(routes, req.method ?? 'GET', url.pathname);
      if (found === undefined) {
        const allowed = routes.filter((r) => r.pattern.test(url.pathname)).map((r) => r.method);
        if (allowed.length) throw new HttpError(405, `${req.method} is not allowed here; use ${allowed.join(' or ')}`, { allow: allowed.join(', ') });
        throw new HttpError(404, `no route ${url.pathname}: the API is listed in docs/serve.md`);
      }
      matched(found.route.name);
      access.check(req, found.route.auth, found.route.page === true);
      if (found.route.body !== undefined) checkBodyHeaders(req, found.route.body);
      return extend(found, { url });
    };

    const replies = new ReplyBudget(REPLY_BUDGET_BYTES);
    const server = createServer({ requestTimeout: 60_000, headersTimeout: 20_000, keepAliveTimeout: 5_000 });
    const pipelining = boundConnections(server, MAX_CONNECTIONS);
    const node = new NodeServer(await listen(server, options.listen), host, records, metrics, options.logger);
    access.bound((server.address() as AddressInfo).port);

    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      // A connection closed already (its client left), or one past the request that closes it: nobody reads an answer.
      if (req.socket.destroyed || pipelining.get(req) === 'dropped') return;
      let route = 'other';
      const started = performance.now();
      // Every answer carries contract-controlled text (values, logs, messages, ABI names): a browser must take
      // it as the type it is sent with, never sniff it into a script or page, and frame none of it. The
      // studio's files set their own policy (studio.ts).
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('content-security-policy', API_CSP);
      res.on('finish', () => {
        httpRequests.inc({ route, status: String(res.statusCode) });
        options.logger.debug('request', { method: req.method, route, status: res.statusCode, ms: Math.round(performance.now() - started) });
      });
      // Everything that can throw runs inside the promise: a bad request must never become an uncaught exception.
      void (async () => {
        if (node.stopping) throw new HttpError(503, 'the node is shutting down', { connection: 'close' });
        if (pipelining.get(req) === 'refused') {
          throw new HttpError(503, `more than ${MAX_REQUESTS_PER_CONNECTION} requests in progress on one connection: wait for answers before sending more, or open another connection`, { connection: 'close' });
        }
        const found = admit(req, (name) => (route = name));
        const url = found.url;
        // A body sent to a route that takes none is thrown away, at most LINGER_BYTES of it, and its connection
        // closes after the answer (some answers are written by their handlers, past closeIfUnread below).
        if (found.route.body === undefined && declaresBody(req)) closeIfUnread(req, res);
        // The body first: a client that sends it slowly must not hold one of the calls in flight meanwhile
        // (64 such clients refused everyone's calls for as long as they kept sending).
        const body = found.route.body === undefined ? undefined : await readRouteBody(req, found.route.body, bodies);
        if (found.route.heavy) {
          if (node.stopping) throw new HttpError(503, 'the node is shutting down', { connection: 'close' });
          if (node.inFlight >= maxInFlight) throw new HttpError(503, `busy: ${node.inFlight} calls in flight (the limit); retry later`, { 'retry-after': '1' });
          node.inFlight++;
          try {
            return await found.route.handler(req, res, found.params, url, body);
          } finally {
            node.inFlight--;
            if (node.inFlight === 0) for (const wake of node.idle.splice(0)) wake();
          }
        }
        return found.route.handler(req, res, found.params, url, body);
      })()
        .then((value) => {
          // Inside the chain: a value that cannot be written (too deep or too large for JSON.stringify) is this
          // request's 500 below, never an unhandled rejection that ends the node.
          if (value === undefined || res.headersSent) return;
          closeIfUnread(req, res);
          sendJson(res, req.method === 'POST' && route !== 'call' && route !== 'view' && route !== 'rpc' ? 201 : 200, value, {}, replies);
        })
        .catch((e: unknown) => {
          const { status, message, headers } = statusOf(e);
          if (status >= 500 && status !== 503) options.logger.error('request failed', { route, status, error: message });
          try {
            // Counted against the unread answers' budget like any answer: an error may quote what it refused.
            if (!res.headersSent) {
              closeIfUnread(req, res);
              sendJson(res, status, { error: message }, headers, replies);
            } else res.end();
          } catch {
            res.destroy();
          }
        });
    });
    // Expect: 100-continue asks whether to send the body: say so only when the request will read it (headers
    // that pass, a route that takes a body, within the pipelining bound), else answer at once and the body never
    // comes. Node's default said yes to every request, so a refused upload was still sent whole.
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      let reads = false;
      try {
        reads = !node.stopping && admit(req).route.body !== undefined;
      } catch {
        // The request handler answers the same refusal.
      }
      // First the request listeners, which decide the pipelining bound; they answer no earlier than a later turn.
      server.emit('request', req, res);
      if (reads && pipelining.get(req) === undefined && !res.headersSent && !req.socket.destroyed) res.writeContinue();
    });
    host.events.on('call.finished', (e) =>
      options.logger.debug('call finished', { callId: e.callId, method: e.method, result: e.result, reason: e.reason, gas: e.gasUsed, ms: Math.round(e.durations.totalMs) }),
    );
    options.logger.info('listening', { url: node.url, token: access.tokenRequired });
    return node;
  }

  /**
   * Graceful stop: refuse new requests, wait for calls in flight (each bounded by its deadline), end the event
   * streams and connections, close the VMs and the store (which releases the data directory).
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.logger.info('stopping: finishing calls in flight', { inFlight: this.inFlight });
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeIdleConnections();
      if (this.inFlight > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
      this.records.close();
      this.metrics.close();
      await this.host.close();
      this.server.closeAllConnections();
      await closed;
      this.logger.info('stopped');
    })();
    return this.stopping;
  }
}

/**
 * Holds the open connections to `max`. A newcomer beyond it closes the oldest idle connection (no request in
 * progress: silent since it connected, still sending its headers, or kept alive between requests), else the
 * oldest whose request's body is still arriving (it holds no call yet); only when every connection has a whole
 * request in progress is the newcomer refused. Refusing newcomers outright (Node's maxConnections) let one
 * client that opened 512 silent connections lock everyone out until the server's header timeout, and again as
 * soon as it reconnected; 512 requests whose bodies trickle in did the same for as long as they trickled.
 *
 * It also bounds the requests in progress on each connection (MAX_REQUESTS_PER_CONNECTION) and returns what it
 * decided for those past the bound: the first is `refused` (answered 503, closing the connection once the answers
 * before it are written), the rest `dropped` (not run, never answered).
 */
function boundConnections(server: Server, max: number): WeakMap<IncomingMessage, 'refused' | 'dropped'> {
  const pastBound = new WeakMap<IncomingMessage, 'refused' | 'dropped'>();
  const closing = new WeakSet<Socket>(); // answered a request 'refused': reads nothing more
  const idle = new Set<Socket>(); // oldest idle first: a Set keeps insertion order
  const busy = new Map<Socket, number>(); // requests in progress on each connection
  const latest = new Map<Socket, IncomingMessage>(); // each busy connection's newest request
  const oldestArriving = (): Socket | undefined => {
    for (const socket of busy.keys()) if (latest.get(socket)?.complete === false) return socket;
    return undefined;
  };
  server.on('connection', (socket: Socket) => {
    if (idle.size + busy.size >= max) {
      const oldest = (idle.values().next().value as Socket | undefined) ?? oldestArriving();
      if (oldest === undefined) {
        socket.destroy();
        return;
      }
      idle.delete(oldest);
      oldest.destroy();
    }
    idle.add(socket);
    socket.once('close', () => {
      idle.delete(socket);
      busy.delete(socket);
      latest.delete(socket);
    });
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    if (socket.destroyed) return;
    idle.delete(socket);
    const inProgress = (busy.get(socket) ?? 0) + 1;
    // Node hands over every request of a received chunk at once (about 1,400 small ones), and answers are written
    // only after each handler's await: a client pipelining thousands made the node work through all of them,
    // for tens of seconds, after it had left. Clients wait for their answers; one that does not is told so and
    // closed, but only once the answers before are written: destroying the connection lost the answers of
    // calls that had been applied, so their client could not know they had.
    if (closing.has(socket)) return void pastBound.set(req, 'dropped');
    if (inProgress > MAX_REQUESTS_PER_CONNECTION) {
      pastBound.set(req, 'refused');
      closing.add(socket);
      socket.pause(); // what is already parsed still arrives, as 'dropped'; nothing more is read
    }
    busy.set(socket, inProgress);
    latest.set(socket, req);
    res.once('close', () => {
      const left = (busy.get(socket) ?? 1) - 1;
      if (left > 0) busy.set(socket, left);
      else {
        busy.delete(socket);
        latest.delete(socket);
        if (!socket.destroyed) idle.add(socket); // the newest idle
      }
    });
  });
  return pastBound;
}

/** Whether the request says a body follows (a length above zero, or chunks). */
function declaresBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/**
 * An answer given before its request's body was read (a refusal at the headers, or a route that takes no body)
 * closes the connection (lingerThenClose): otherwise Node reads the rest of a body nobody will use to keep the
 * connection, and a 2 GB upload refused at its headers was read to its end. Call it before the answer is written.
 */
function closeIfUnread(req: IncomingMessage, res: ServerResponse): void {
  if (req.complete) return;
  lingerThenClose(req);
  res.setHeader('connection', 'close');
}

function listen(server: Server, at: ListenAddress): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function match(routes: Route[], method: string, path: string): { route: Route; params: string[] } | undefined {
  for (const route of routes) {
    if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) continue;
    const m = route.pattern.exec(path);
    if (m) return { route, params: m.slice(1).map(decodePart) };
  }
  return undefined;
}

function decodePart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpError(400, `malformed percent-encoding in the path: '${part}'`);
  }
}

function apiRoutes(api: Api, metrics: HostMetrics, maxBody: number, studio: Studio): Route[] {
  const limit = (url: URL): number => Number(url.searchParams.get('limit') ?? 100) || 100;
  return [
    { method: 'GET', pattern: /^\/healthz$/, name: 'healthz', auth: false, handler: async () => ({ status: 'ok' }) },
    {
      method: 'GET',
      pattern: /^\/metrics$/,
      name: 'metrics',
      auth: true,
      handler: async (_req, res) => {
        const text = await metrics.registry.metrics();
        res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' });
        res.end(text);
      },
    },
    { method: 'GET', pattern: /^\/api\/info$/, name: 'info', auth: true, handler: async () => api.info() },
    { method: 'GET', pattern: /^\/api\/codes$/, name: 'codes', auth: true, handler: async () => api.codes() },
    {
      method: 'POST',
      pattern: /^\/api\/codes$/,
      name: 'deploy',
      auth: true,
      heavy: true,
      body: { kind: 'wasm', limit: maxBody },
      handler: async (_q, _s, _p, _u, body) => api.deploy(Uint8Array.from(body as Buffer)),
    },
    { method: 'GET', pattern: /^\/api\/codes\/([0-9a-fA-F]{64})$/, name: 'code', auth: true, handler: async (_q, _s, [hash]) => api.code(hash!) },
    { method: 'GET', pattern: /^\/api\/examples$/, name: 'examples', auth: true, handler: async () => api.examples() },
    { method: 'POST', pattern: /^\/api\/examples\/([^/]+)\/deploy$/, name: 'deploy_example', auth: true, heavy: true, handler: async (_q, _s, [name]) => api.deployExample(name!) },
    { method: 'GET', pattern: /^\/api\/contexts$/, name: 'contexts', auth: true, handler: async () => api.contexts() },
    { method: 'GET', pattern: /^\/api\/contexts\/([^/]+)\/state$/, name: 'state', auth: true, handler: async (_q, _s, [id]) => api.state(id!) },
    { method: 'POST', pattern: /^\/api\/calls$/, name: 'call', auth: true, heavy: true, body: { kind: 'json', limit: JSON_BODY_BYTES }, handler: async (_q, _s, _p, _u, body) => api.call(body as Record<string, unknown>) },
    { method: 'POST', pattern: /^\/api\/views$/, name: 'view', auth: true, heavy: true, body: { kind: 'json', limit: JSON_BODY_BYTES }, handler: async (_q, _s, _p, _u, body) => api.view(body as Record<string, unknown>) },
    { method: 'GET', pattern: /^\/api\/calls$/, name: 'calls', auth: true, handler: async (_q, _s, _p, url) => api.recentCalls(limit(url)) },
    { method: 'GET', pattern: /^\/api\/calls\/(\d{1,15})$/, name: 'call_record', auth: true, handler: async (_q, _s, [id]) => api.callRecord(Number(id)) },
    { method: 'GET', pattern: /^\/api\/calls\/(\d{1,15})\/trace$/, name: 'call_trace', auth: true, handler: async (_q, _s, [id]) => api.callRecord(Number(id)).trace },
    {
      method: 'GET',
      pattern: /^\/api\/events$/,
      name: 'events',
      auth: true,
      handler: async (_req, res) => {
        if (!api.records.subscribe(res)) throw new HttpError(503, 'too many event streams open; retry later', { 'retry-after': '5' });
      },
    },
    { method: 'POST', pattern: /^\/rpc$/, name: 'rpc', auth: true, heavy: true, body: { kind: 'json', limit: maxBody }, handler: async (_q, _s, _p, _u, body) => rpc(api, body as Record<string, unknown>) },
    { method: 'GET', pattern: /^\/(|index\.html|studio\.js|studio\.css)$/, name: 'studio', auth: false, page: true, handler: async (_q, res, [file]) => studio.serve(res, file || 'index.html') },
  ];
}
