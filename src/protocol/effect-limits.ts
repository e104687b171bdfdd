/**
 * The per-call effect limits (max_node_actions, max_storage_writes, max_effect_bytes; protocol/bounds.json):
 * what one call may ask the host to apply. The VM stops an execution that exceeds them (VMError
 * NodeActionsOverflow at the host function, EffectsOverflow at the end) and the host checks every result it
 * receives again, because a compromised VM may send anything: over the limits is a protocol violation and
 * nothing is applied. Applying is then bounded by the gas-paid work of at most these many actions and bytes.
 */
import type { Effects } from './effects.js';
import type { VmLimits } from './message.js';
import type { NodeEffects } from './node-effects.js';

export type EffectLimits = Pick<VmLimits, 'maxNodeActions' | 'maxStorageWrites' | 'maxEffectBytes'>;

/** Context mutations, proposals, approvals and blob announcements queued so far. */
export function nodeActionCount(e: Pick<NodeEffects, 'contextMutations' | 'proposals' | 'approvals' | 'blobAnnouncements'>): number {
  return e.contextMutations.length + e.proposals.length + e.approvals.length + e.blobAnnouncements.length;
}

const utf8Length = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Bytes the effects carry: keys, values, texts, ids and payloads (the encoding's own framing not counted). */
export function effectBytes(e: Effects): number {
  let n = 0;
  for (const [k, v] of e.writes) n += k.length + (v?.length ?? 0);
  for (const [k, v] of e.privateWrites) n += k.length + (v?.length ?? 0);
  for (const l of e.logs) n += utf8Length(l);
  for (const ev of e.events) n += utf8Length(ev.kind) + ev.data.length + (ev.handler === null ? 0 : utf8Length(ev.handler));
  for (const x of e.xcalls) n += 32 + utf8Length(x.function) + x.params.length;
  for (const m of e.contextMutations) {
    n += 32;
    if (m.kind === 'create') n += utf8Length(m.protocol) + 32 + m.initArgs.length + (m.alias === null ? 0 : utf8Length(m.alias));
  }
  for (const p of e.proposals) n += 32 + p.actions.length;
  n += 32 * e.approvals.length + 64 * e.blobAnnouncements.length;
  n += (e.artifact?.length ?? 0) + (e.rootHash?.length ?? 0);
  return n;
}

/** Why these effects break the call's limits, or undefined when they do not. */
export function effectLimitProblem(limits: EffectLimits, e: Effects): string | undefined {
  const actions = nodeActionCount(e);
  if (actions > limits.maxNodeActions) return `${actions} node actions exceed max_node_actions ${limits.maxNodeActions}`;
  const writes = e.writes.length + e.privateWrites.length;
  if (writes > limits.maxStorageWrites) return `${writes} storage writes exceed max_storage_writes ${limits.maxStorageWrites}`;
  const bytes = effectBytes(e);
  if (bytes > limits.maxEffectBytes) return `${bytes} bytes of effects exceed max_effect_bytes ${limits.maxEffectBytes}`;
  return undefined;
}
