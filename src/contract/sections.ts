/**
 * Custom sections of a WebAssembly binary, read and replaced without decoding anything else: the ABI is
 * stored in one, and rewriting the module's other sections would risk changing what it does.
 */

function readU32(b: Uint8Array, at: number): [value: number, next: number] {
  let v = 0;
  let shift = 0;
  for (let i = at; i < b.length && i < at + 5; i++) {
    v |= (b[i]! & 0x7f) << shift;
    if ((b[i]! & 0x80) === 0) return [v >>> 0, i + 1];
    shift += 7;
  }
  throw new Error('malformed LEB128 in the WebAssembly binary');
}

function u32(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

interface Section {
  id: number;
  start: number;
  end: number;
  name?: string;
  payloadStart?: number;
}

function sections(b: Uint8Array): Section[] {
  if (b.length < 8 || b[0] !== 0 || b[1] !== 0x61 || b[2] !== 0x73 || b[3] !== 0x6d) throw new Error('not a WebAssembly module');
  const out: Section[] = [];
  let at = 8;
  while (at < b.length) {
    const start = at;
    const id = b[at]!;
    const [size, body] = readU32(b, at + 1);
    const end = body + size;
    if (end > b.length) throw new Error('a section extends past the end of the WebAssembly binary');
    const s: Section = { id, start, end };
    if (id === 0) {
      const [len, nameAt] = readU32(b, body);
      s.name = new TextDecoder().decode(b.subarray(nameAt, nameAt + len));
      s.payloadStart = nameAt + len;
    }
    out.push(s);
    at = end;
  }
  return out;
}

/** The payload of the first custom section called `name`, or undefined. */
export function readCustomSection(wasm: Uint8Array, name: string): Uint8Array | undefined {
  const s = sections(wasm).find((x) => x.id === 0 && x.name === name);
  return s ? wasm.slice(s.payloadStart!, s.end) : undefined;
}

/** The module without any custom section called `name`, with one such section (this payload) appended. */
export function customSection(wasm: Uint8Array, name: string, payload: Uint8Array): Uint8Array {
  const kept = sections(wasm).filter((s) => !(s.id === 0 && s.name === name));
  const nameBytes = new TextEncoder().encode(name);
  const body = [...u32(nameBytes.length), ...nameBytes];
  const header = [0, ...u32(body.length + payload.length)];
  const parts: Uint8Array[] = [wasm.subarray(0, 8), ...kept.map((s) => wasm.subarray(s.start, s.end)), Uint8Array.from(header), Uint8Array.from(body), payload];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
