/**
 * Blobs, streamed to and from the host's blob store in frames of at most BLOB_FRAME_BYTES. Descriptors come
 * from blob-handles.ts (from 1, at most max_blob_handles open). A written blob gets its id from the host at
 * blob_close; it is staged there, readable by this execution, and stored only if the execution succeeds.
 */
import { HostlinkError } from '../../errors.js';
import { BLOB_FRAME_BYTES } from '../../protocol/node-limits.js';
import { takeFullFrames, takeRest, type BlobHandle } from '../blob-handles.js';
import type { Execution } from '../execution.js';
import { destinationOf, readId32 } from './ids.js';
import type { FamilyImpl } from './types.js';

function checkRoom(ex: Execution): void {
  const max = ex.limits.maxBlobHandles;
  if (ex.node.blobs.openCount >= max) ex.fail('TooManyBlobHandles', `${max} blob descriptors are open (max_blob_handles)`);
}

function handle<K extends BlobHandle['kind']>(ex: Execution, fd: bigint, kind?: K): Extract<BlobHandle, { kind: K }> {
  const h = ex.node.blobs.get(fd);
  const n = BigInt.asUintN(64, fd);
  if (h === undefined) ex.fail('InvalidBlobHandle', `blob descriptor ${n} is not open`);
  if (kind !== undefined && h.kind !== kind) ex.fail('InvalidBlobHandle', `blob descriptor ${n} is open for ${h.kind === 'read' ? 'reading' : 'writing'}`);
  return h as Extract<BlobHandle, { kind: K }>;
}

export const blobs: FamilyImpl<'blobs'> = {
  blob_create(ex) {
    checkRoom(ex);
    return ex.node.blobs.add({ kind: 'write', pending: [], pendingBytes: 0 });
  },
  blob_write(ex, fd, dataPtr) {
    const h = handle(ex, fd, 'write');
    const data = ex.readBuffer(dataPtr, 'blob data', ex.limit('maxBlobChunkSize', 'BlobWriteTooLarge'));
    // Bytes buffered until a full frame is ready count against the budget while they wait.
    const buffered = h.pendingBytes;
    ex.budget.adjust(data.length, 'blob data');
    const frames = takeFullFrames(h, data);
    ex.budget.adjust(h.pendingBytes - buffered - data.length, 'blob data');
    for (const frame of frames) {
      if (ex.node.host().fetch('blob_append', { handle: fd, data: frame }) === undefined) {
        throw new HostlinkError('protocol', 'blob_append answered absent');
      }
    }
    return BigInt(data.length);
  },
  blob_close(ex, fd, blobIdPtr) {
    const h = handle(ex, fd);
    const dest = destinationOf(ex, blobIdPtr, 32, 'blob id');
    let id: Uint8Array;
    if (h.kind === 'read') {
      id = h.blobId;
    } else {
      const rest = takeRest(h);
      ex.budget.adjust(-rest.length, 'blob data');
      const answer = ex.node.host().fetch('blob_finish', { handle: fd, data: rest });
      if (answer === undefined) throw new HostlinkError('protocol', 'blob_finish answered absent');
      id = answer.blobId;
    }
    ex.node.blobs.remove(fd);
    ex.memory.writeAt(dest, id);
    return 1;
  },
  blob_open(ex, blobIdPtr) {
    const blobId = readId32(ex, blobIdPtr, 'blob id');
    checkRoom(ex);
    // As the reference: opening does not check that the blob exists; a missing blob reads as empty.
    return ex.node.blobs.add({ kind: 'read', blobId, offset: 0n });
  },
  blob_read(ex, fd, dataPtr) {
    const h = handle(ex, fd, 'read');
    const dest = ex.memory.destination(dataPtr, 'blob buffer');
    let filled = 0;
    // Fill the whole buffer (frame by frame) unless the blob ends first: 0 means the end, or no such blob.
    while (filled < dest.len) {
      const length = Math.min(BLOB_FRAME_BYTES, dest.len - filled);
      const answer = ex.node.host().fetch('blob_read', { blobId: h.blobId, offset: h.offset, length });
      if (answer === undefined) break;
      const data = answer.data;
      if (data.length > length) throw new HostlinkError('protocol', `blob_read answered ${data.length} bytes for ${length}`);
      ex.memory.writeAt({ ptr: dest.ptr + filled, len: data.length }, data);
      filled += data.length;
      h.offset += BigInt(data.length);
      if (data.length < length) break;
    }
    ex.chargeBytes(filled);
    return BigInt(filled);
  },
  blob_announce_to_context(ex, blobIdPtr, contextIdPtr) {
    const blobId = readId32(ex, blobIdPtr, 'blob id');
    const contextId = readId32(ex, contextIdPtr, 'context id');
    if (ex.node.host().fetch('blob_size', { blobId }) === undefined) return 0;
    ex.node.reserveAction();
    ex.hold(blobId.length + contextId.length, 'blob announcement');
    ex.node.announcements.push({ blobId, contextId });
    return 1;
  },
};
