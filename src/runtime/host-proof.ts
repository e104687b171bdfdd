/**
 * The host's proof to a VM that serves (the runtime handshake): the first 32 bytes the host writes on a connection
 * it opened to the address the VM announced in Initialize.
 *
 *   host proof = HMAC-SHA256(secret, RUNTIME_HOST_PROOF_LABEL || the VM's announced address, UTF-8)
 *
 * Why it exists: the VM answers a connection with its hello, whose proof the host accepts once per secret. Were
 * the VM to say hello to whoever connected first, a local process could connect to the VM's listener, take that
 * hello and replay it to the host through a forged Initialize pointing at itself. With this proof the VM says
 * hello only to a peer that holds its secret. The address binds the proof to this VM's listener: what the host
 * sends to a forger's address does not open the real VM's.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { RUNTIME_HOST_PROOF_LABEL } from '../protocol/generated.js';

export const HOST_PROOF_BYTES = 32;

export function hostProof(secret: Uint8Array, vmAddress: string): Buffer {
  return createHmac('sha256', secret).update(RUNTIME_HOST_PROOF_LABEL, 'utf8').update(vmAddress, 'utf8').digest();
}

export function checkHostProof(secret: Uint8Array, vmAddress: string, proof: Uint8Array): boolean {
  return proof.length === HOST_PROOF_BYTES && timingSafeEqual(hostProof(secret, vmAddress), proof);
}
