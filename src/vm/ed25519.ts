/**
 * Ed25519 for ed25519_verify: node:crypto verifies (OpenSSL, about 10x faster than pure-JS libraries), and a
 * public key is first checked the way the reference (ed25519-dalek VerifyingKey::from_bytes) checks it:
 * the 32 bytes must decompress to a curve point. OpenSSL imports any 32 bytes and merely fails to verify,
 * so without this check an unparseable key would return 0 instead of trapping Ed25519IncorrectPublicKey.
 */
import { createPublicKey, verify } from 'node:crypto';

const P = (1n << 255n) - 19n;
/** d = -121665 / 121666 mod p, the twisted Edwards curve constant. */
const D = (-121665n * modPow(121666n, P - 2n)) % P;
/** DER SubjectPublicKeyInfo prefix of an Ed25519 key (RFC 8410); the raw 32 bytes follow. */
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function modPow(base: bigint, exp: bigint): bigint {
  let result = 1n;
  let b = ((base % P) + P) % P;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return result;
}

/**
 * True when the key decompresses to a point, as curve25519-dalek decides it: y is the low 255 bits (reduced
 * mod p, so non-canonical encodings are accepted), and x^2 = (y^2 - 1) / (d y^2 + 1) must have a root.
 */
export function isEd25519Point(publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32) return false;
  let y = 0n;
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(i === 31 ? publicKey[i]! & 0x7f : publicKey[i]!);
  y %= P;
  const y2 = (y * y) % P;
  const u = (y2 - 1n + P) % P;
  const v = (D * y2 + 1n) % P; // never 0: -1/d is not a square
  const x2 = (u * modPow(v, P - 2n)) % P;
  // Euler's criterion: a square (or 0) raised to (p-1)/2 is 1 (or 0).
  const legendre = modPow(x2, (P - 1n) / 2n);
  return legendre === 0n || legendre === 1n;
}

/** Verifies a 64-byte signature by a 32-byte key that isEd25519Point accepted. */
export function ed25519Verify(signature: Uint8Array, publicKey: Uint8Array, message: Uint8Array): boolean {
  const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
  return verify(null, message, key, signature);
}
