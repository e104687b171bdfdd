/**
 * The state root computed from scratch, straight from the definition in docs/state.md. It shares no code with
 * the incremental tree in merkle.ts (not even the hash helper), so tests and audits can check one against the
 * other. Cost: O(n log n) for n entries.
 */
import { createHash } from 'node:crypto';
import { HostlinkError } from '../../errors.js';

const H = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

interface Leaf {
  bits: string; // sha256(key) as 256 '0'/'1' characters, most significant bit first
  hash: Buffer;
}

function subtreeHash(leaves: Leaf[], depth: number): Buffer {
  if (leaves.length === 0) return Buffer.alloc(32);
  if (leaves.length === 1) return leaves[0]!.hash;
  let split = leaves.findIndex((l) => l.bits[depth] === '1');
  if (split < 0) split = leaves.length;
  return H(Uint8Array.of(0x01), subtreeHash(leaves.slice(0, split), depth + 1), subtreeHash(leaves.slice(split), depth + 1));
}

/** The Merkle root of a set of (key, value) entries; keys must be distinct. */
export function computeRootFromScratch(entries: Iterable<readonly [Uint8Array, Uint8Array]>): Uint8Array {
  const leaves: Leaf[] = [];
  for (const [key, value] of entries) {
    const kh = H(key);
    const bits = [...kh].map((b) => b.toString(2).padStart(8, '0')).join('');
    leaves.push({ bits, hash: H(Uint8Array.of(0x00), kh, H(value)) });
  }
  leaves.sort((a, b) => (a.bits < b.bits ? -1 : a.bits > b.bits ? 1 : 0));
  for (let i = 1; i < leaves.length; i++) {
    if (leaves[i]!.bits === leaves[i - 1]!.bits) throw new HostlinkError('usage', 'computeRootFromScratch: duplicate key');
  }
  return new Uint8Array(subtreeHash(leaves, 0));
}
