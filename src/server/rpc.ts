/**
 * JSON-RPC 2.0 over POST /rpc: the same operations as the REST routes (api.ts), for clients that prefer one
 * endpoint. Methods: info, deploy {wasm_base64}, deploy_example {name}, codes, contexts, state {context},
 * call {code, method, input, …}, view {as call}, recent_calls {limit}, get_call {call_id}. Batches are not supported.
 */
import { HostlinkError } from '../errors.js';
import type { Api } from './api.js';
import { HttpError, needString, statusOf } from './http.js';

const INVALID_REQUEST = -32600;
const METHOD_NOT_FOUND = -32601;
const INVALID_PARAMS = -32602;
const INTERNAL_ERROR = -32603;
/** Server errors (-32000..-32099): the node refused or failed the operation; `data.status` is the HTTP equivalent. */
const SERVER_ERROR = -32000;

type Params = Record<string, unknown>;
const METHODS: Record<string, (api: Api, p: Params) => unknown> = {
  info: (api) => api.info(),
  deploy: (api, p) => {
    const b64 = needString(p, 'wasm_base64');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new HttpError(400, "param 'wasm_base64' is not base64");
    return api.deploy(Uint8Array.from(Buffer.from(b64, 'base64')));
  },
  deploy_example: (api, p) => api.deployExample(needString(p, 'name')),
  codes: (api) => api.codes(),
  contexts: (api) => api.contexts(),
  state: (api, p) => api.state(needString(p, 'context')),
  call: (api, p) => api.call(p),
  view: (api, p) => api.view(p),
  recent_calls: (api, p) => api.recentCalls(typeof p['limit'] === 'number' ? p['limit'] : 100),
  get_call: (api, p) => {
    if (typeof p['call_id'] !== 'number') throw new HttpError(400, "param 'call_id' must be a number");
    return api.callRecord(p['call_id']);
  },
};

export async function rpc(api: Api, body: Params): Promise<Record<string, unknown>> {
  const id = typeof body['id'] === 'string' || typeof body['id'] === 'number' ? body['id'] : null;
  const fail = (code: number, message: string, data?: unknown) => ({ jsonrpc: '2.0', id, error: { code, message, ...(data === undefined ? {} : { data }) } });
  if (body['jsonrpc'] !== '2.0' || typeof body['method'] !== 'string') return fail(INVALID_REQUEST, 'a JSON-RPC 2.0 request needs "jsonrpc": "2.0" and a string "method"');
  // Own names only: `constructor`, `toString` and the rest of Object.prototype are not methods.
  const method = Object.hasOwn(METHODS, body['method']) ? METHODS[body['method']] : undefined;
  if (method === undefined) return fail(METHOD_NOT_FOUND, `unknown method '${body['method']}'; methods: ${Object.keys(METHODS).join(', ')}`);
  const params = body['params'] ?? {};
  if (params === null || typeof params !== 'object' || Array.isArray(params)) return fail(INVALID_PARAMS, 'params must be an object (named parameters)');
  try {
    return { jsonrpc: '2.0', id, result: await method(api, params as Params) };
  } catch (e) {
    const { status, message } = statusOf(e);
    if (status === 400 || (e instanceof HostlinkError && e.code === 'usage')) return fail(INVALID_PARAMS, message);
    return fail(status >= 500 ? INTERNAL_ERROR : SERVER_ERROR, message, { status });
  }
}
