// Utility host functions. Time and randomness come from the message, so they are deterministic.
import { fetch as hostFetch, random_bytes, time_now, ed25519_verify } from "./env";
import { bytesDescriptor, toBytes, utf8 } from "./buffers";
import { BorshWriter } from "./borsh";
import { DATA_REGISTER, readRegister } from "./registers";

/** Outcome of `fetch`: `ok` with the response body, or not ok with the host's message in `body`. */
export class FetchResponse {
  constructor(public ok: bool, public body: Uint8Array) {}

  get text(): string {
    return String.UTF8.decodeUnsafe(this.body.dataStart, <usize>this.body.byteLength, false);
  }
}

/**
 * HTTP request; blocked unless the host's policy allows the origin. `headers` alternates names and
 * values ([name0, value0, name1, value1, ...]) and is sent as Borsh Vec<(String, String)>.
 */
export function fetch<B>(url: string, method: string, headers: Array<string>, body: B): FetchResponse {
  if (headers.length & 1) throw new Error("fetch: headers must alternate names and values");
  const h = new BorshWriter().u32(<u32>(headers.length >> 1));
  for (let i = 0; i < headers.length; i++) h.string(headers[i]);
  const failed = hostFetch(
    bytesDescriptor(utf8(url)), bytesDescriptor(utf8(method)), bytesDescriptor(h.finish()),
    bytesDescriptor(toBytes<B>(body)), DATA_REGISTER,
  );
  // The host answers 0 on success and 1 on failure, with the body or the message in the register.
  return new FetchResponse(failed == 0, readRegister(DATA_REGISTER));
}

/** `n` bytes derived from the message's seed. */
export function randomBytes(n: i32): Uint8Array {
  const out = new Uint8Array(n);
  random_bytes(bytesDescriptor(out));
  return out;
}

/** The message's block time in Unix nanoseconds. */
export function timeNow(): u64 {
  const out = new Uint8Array(8);
  time_now(bytesDescriptor(out));
  return load<u64>(out.dataStart);
}

/** Verifies an Ed25519 signature (64 bytes) by a public key (32 bytes) over `message`. */
export function ed25519Verify<M>(signature: Uint8Array, publicKey: Uint8Array, message: M): bool {
  return ed25519_verify(bytesDescriptor(signature), bytesDescriptor(publicKey), bytesDescriptor(toBytes<M>(message))) == 1;
}
