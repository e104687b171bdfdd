/**
 * What an embedder sees of the node tables (`host.node`): reads of contexts, members, proposals, private state
 * and blobs, and the two set-up operations outside any call (add and remove members). The methods bound to one
 * execution (blob uploads, alias reservations, fetch) and the commit side (apply, settle) are not on it: the
 * handlers and the committer hold the NodeServices itself. The view is a separate frozen object, so those
 * members are absent at run time too, not only from its type.
 */
import type { NodeServices } from './services.js';

export const NODE_INSPECTION_METHODS = [
  'privateState',
  'contextMembers',
  'isContextMember',
  'addMembers',
  'removeMembers',
  'context',
  'contexts',
  'resolveContextAlias',
  'proposals',
  'approvals',
  'blobSizeOf',
  'blob',
  'readBlob',
  'announcedBlobs',
] as const;

/** Counters for tests and metrics: aliases reserved and snapshots held by calls in progress. */
const NODE_INSPECTION_COUNTERS = ['reservedAliases', 'openSnapshots'] as const;

export type NodeInspection = Readonly<Pick<NodeServices, (typeof NODE_INSPECTION_METHODS)[number] | (typeof NODE_INSPECTION_COUNTERS)[number]>>;

/** The read-only view of `services` that `host.node` is. */
export function nodeInspection(services: NodeServices): NodeInspection {
  const view: Record<string, unknown> = {};
  for (const name of NODE_INSPECTION_METHODS) view[name] = services[name].bind(services);
  for (const name of NODE_INSPECTION_COUNTERS) Object.defineProperty(view, name, { get: () => services[name], enumerable: true });
  return Object.freeze(view) as unknown as NodeInspection;
}
