/**
 * The hello proof: how a VM shows it holds the per-VM secret its launcher gave it, without sending the secret.
 *
 *   proof = HMAC-SHA256(secret, HELLO_PROOF_LABEL || hello request body with the proof field zeroed)
 *
 * The proof is the last field of hello (bytes32), so "the body with the proof zeroed" is the body with its
 * last 32 bytes set to 0. It binds the version range, vm_version and pid, and never reveals the secret: a
 * peer that sees one proof cannot produce a hello for another VM (each VM has its own secret) and the host
 * accepts one authenticated connection per secret. Shared by the VM (which signs) and the host (which checks).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { HELLO_PROOF_LABEL, VM_SECRET_BYTES } from './generated.js';
import { decodeRequest } from './messages.js';

const PROOF_BYTES = 32;
const LABEL = Buffer.from(HELLO_PROOF_LABEL, 'utf8');

/** A fresh secret for one VM process (crypto random, VM_SECRET_BYTES bytes). */
export function newVmSecret(): Buffer {
  return randomBytes(VM_SECRET_BYTES);
}

/** The proof for a hello body (its proof field, the last 32 bytes, is ignored: treated as zero). */
export function helloProof(secret: Uint8Array, helloBody: Uint8Array): Uint8Array<ArrayBuffer> {
  const zeroed = Buffer.from(helloBody);
  zeroed.fill(0, Math.max(0, zeroed.length - PROOF_BYTES));
  return new Uint8Array(createHmac('sha256', secret).update(LABEL).update(zeroed).digest());
}

/**
 * True when `body` is a well-formed hello request whose proof was made with `secret`. Anything else
 * (another method, a malformed body, a wrong proof) is false; the comparison takes constant time.
 */
export function checkHelloProof(secret: Uint8Array, body: Uint8Array): boolean {
  let proof: Uint8Array;
  try {
    const request = decodeRequest(body);
    if (request.method !== 'hello') return false;
    proof = request.fields.proof;
  } catch {
    return false;
  }
  return timingSafeEqual(helloProof(secret, body), proof);
}
