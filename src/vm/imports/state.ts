/**
 * State management: the root state document, the CRDT artifact and the explicit commit (docs/crdt.md).
 * flush_delta turns the execution's pending collection actions into the call's artifact; commit records a
 * guest-built root hash and artifact instead. Either fixes the artifact, so commit after commit or after an
 * emitting flush, and flush after commit, trap with CommitTwice. apply_storage_delta merges an artifact of
 * another node's execution; a malformed one traps with DeserializationError.
 */
import { guarded, readId, sessionOf } from '../crdt/session.js';
import { readValue } from './storage.js';
import type { FamilyImpl } from './types.js';

export const state: FamilyImpl<'state'> = {
  commit(ex, rootHashPtr, artifactPtr) {
    const root = readId(ex, rootHashPtr, 'root hash');
    if (root.length !== 32) ex.fail('InvalidMemoryAccess', `root hash must be 32 bytes, got ${root.length}`);
    const artifact = ex.readBuffer(artifactPtr, 'artifact');
    const s = sessionOf(ex);
    if (s.committed) ex.fail('CommitTwice', 'commit was already called in this call');
    if (s.emitted) ex.fail('CommitTwice', "flush_delta already emitted this call's artifact");
    s.committed = true;
    ex.setArtifact(artifact);
    ex.rootHash = root;
  },
  persist_root_state(ex, docPtr, createdAt, updatedAt) {
    const doc = readValue(ex, docPtr);
    guarded(ex, (c) => c.persistRoot(doc, BigInt.asUintN(64, createdAt), BigInt.asUintN(64, updatedAt)));
  },
  read_root_state(ex, registerId) {
    const doc = guarded(ex, (c) => c.readRoot());
    if (doc === null) return 0;
    ex.setRegister(registerId, doc);
    return 1;
  },
  apply_storage_delta(ex, deltaPtr) {
    const delta = ex.readBuffer(deltaPtr, 'delta');
    guarded(ex, (c) => c.applyArtifact(delta));
  },
  flush_delta(ex) {
    const s = sessionOf(ex);
    if (s.committed) ex.fail('CommitTwice', 'commit already recorded the artifact of this call');
    const artifact = s.collections.flush();
    if (artifact === null) return 0;
    ex.chargeBytes(artifact.length);
    ex.setArtifact(artifact);
    s.emitted = true;
    return 1;
  },
};
