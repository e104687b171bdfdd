/**
 * The CLI talking to a running `hostlink serve` instead of opening the data directory (which the node holds):
 * `--server URL` or HOSTLINK_SERVER, with the bearer token from HOSTLINK_TOKEN. Output is the same as in
 * local mode: the node answers with the same outcome JSON that `--json` prints.
 */
import { HostlinkError } from '../errors.js';
import { failureHint, type HintContext } from '../host/outcome-hint.js';
import { gasText, haltedText, printJson, type HaltJson } from './common.js';
import { logText, shownText } from '../terminal-text.js';

export const SERVER_OPTION = { server: { type: 'string' } } as const;

export const SERVER_HELP = `  --server URL          talk to a running \`hostlink serve\` at URL instead of opening --data-dir
                        (or set HOSTLINK_SERVER; its token, if any, from HOSTLINK_TOKEN)`;

/** The server URL from --server or HOSTLINK_SERVER, normalised to end with '/'; undefined for local mode. */
export function serverOf(values: { server?: string }): string | undefined {
  const url = values.server ?? (process.env['HOSTLINK_SERVER'] || undefined);
  if (url === undefined) return undefined;
  if (!/^https?:\/\/[^/]+/.test(url)) throw new HostlinkError('usage', `--server takes the node's URL, e.g. http://127.0.0.1:7411 (got '${url}')`);
  return url.endsWith('/') ? url : `${url}/`;
}

/** Failures to open the connection: nothing of the request reached the node. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);

export class RemoteNode {
  constructor(readonly url: string) {}

  get<T>(path: string): Promise<T> {
    return this.request<T>(path, {}, 'retry once the node answers');
  }

  /**
   * `ifLost`: what to do when the connection drops after the request went out (the node may have acted on it),
   * e.g. how to check whether a call was applied before sending it again.
   */
  post<T>(path: string, body: unknown, type = 'application/json', ifLost = 'whether the node acted on it is unknown: check before sending it again'): Promise<T> {
    return this.request<T>(path, { method: 'POST', headers: { 'content-type': type }, body: body instanceof Uint8Array ? body : JSON.stringify(body) }, ifLost);
  }

  private async request<T>(path: string, init: RequestInit, ifLost: string): Promise<T> {
    const token = process.env['HOSTLINK_TOKEN'];
    const headers = { ...(init.headers as Record<string, string>), ...(token ? { authorization: `Bearer ${token}` } : {}) };
    const lost = (e: unknown): HostlinkError => {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      return new HostlinkError('channel_closed', `the connection to the node at ${this.url} was lost after the request was sent (${cause?.code ?? cause?.message ?? (e as Error).message}): ${ifLost}`);
    };
    let res: Response;
    try {
      res = await fetch(this.url + path, { ...init, headers });
    } catch (e) {
      // No code (fetch refused the URL, e.g. a blocked port) or a failure to connect: nothing was sent.
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      if (cause?.code !== undefined && !NOT_CONNECTED.has(cause.code)) throw lost(e);
      throw new HostlinkError('channel_closed', `cannot reach the node at ${this.url} (${cause?.code ?? cause?.message ?? (e as Error).message}): is \`hostlink serve\` running?`);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw lost(e); // the answer was cut off: the node had the request
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new HostlinkError('protocol', `the node at ${this.url} answered ${res.status} with something that is not JSON`);
    }
    if (!res.ok) {
      const message = (body as { error?: string }).error ?? `HTTP ${res.status}`;
      throw new HostlinkError(res.status === 404 ? 'not_found' : res.status === 400 || res.status === 413 || res.status === 415 ? 'usage' : 'internal', `node: ${message}`);
    }
    return body as T;
  }
}

/** An outcome JSON (`call --json` shape) printed as `hostlink call` prints a local outcome. */
export function printOutcomeJson(o: Record<string, unknown>, json: boolean, view = false, hints?: HintContext): void {
  if (json) {
    printJson(o);
    return;
  }
  const code = String(o['result']);
  const message = String(o['message']);
  // As printOutcome: the contract's text shown without its control characters acting on the terminal.
  if (code === 'return') process.stdout.write(`${o['value'] === null ? '(no value)' : shownText(String(o['value']))}\n`);
  else process.stdout.write(`${code}: ${logText(message)}\n`);
  for (const line of o['logs'] as string[]) process.stderr.write(`  log: ${logText(line)}\n`);
  for (const e of o['events'] as { kind: string; data: string }[]) process.stderr.write(`  event: ${logText(e.kind)} ${logText(e.data)}\n`);
  const writes = (o['writes'] as unknown[]).length;
  process.stderr.write(
    `  ${o['applied'] ? `applied ${writes} change(s)` : view ? `view: not applied (${writes} change(s) discarded)` : 'state unchanged'}; ${gasText(String(o['gas_used']), { code, message }, o['crash'] !== undefined)}; context ${String(o['context']).slice(0, 16)}…; root ${String(o['state_root']).slice(0, 16)}…\n`,
  );
  const hint = code === 'return' || hints === undefined ? undefined : failureHint({ code, message, fingerprintNull: o['fingerprint'] === null }, hints);
  if (hint !== undefined) process.stderr.write(`  hint: ${hint}\n`);
  const halted = o['follow_ups_halted'] as HaltJson | undefined;
  if (halted !== undefined) process.stderr.write(`  ${haltedText(halted)}\n`);
}
