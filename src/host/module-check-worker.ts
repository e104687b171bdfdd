/**
 * Worker-thread entry of the deploy check (module-check.ts): validates and instruments one module at a time,
 * off the host's event loop, and answers with the outcome. Nothing here touches the store.
 */
import { parentPort } from 'node:worker_threads';
import type { FloatPolicy, VmLimits } from '../protocol/message.js';
import { deployVerdict } from '../vm/instrument/deploy-verdict.js';
import { policyFor } from '../vm/policy.js';

export interface CheckRequest {
  id: number;
  code: Uint8Array;
  limits: VmLimits;
  floats: FloatPolicy;
  /** false: only WebAssembly validation (deploy with check: false), and the named rule when that fails. */
  instrument: boolean;
}

export type CheckAnswer =
  | { id: number; kind: 'ok' }
  | { id: number; kind: 'invalid' }
  | { id: number; kind: 'rejected'; message: string }
  | { id: number; kind: 'failed'; message: string };

function check(req: CheckRequest): CheckAnswer {
  try {
    const verdict = deployVerdict(req.code, policyFor({ limits: req.limits, floats: req.floats }), req.instrument);
    if (verdict === undefined) return { id: req.id, kind: 'ok' };
    if (verdict === 'not_wasm') return { id: req.id, kind: 'invalid' };
    return { id: req.id, kind: 'rejected', message: verdict.message };
  } catch (e) {
    return { id: req.id, kind: 'failed', message: e instanceof Error ? e.message : String(e) };
  }
}

parentPort?.on('message', (req: CheckRequest) => parentPort!.postMessage(check(req)));
