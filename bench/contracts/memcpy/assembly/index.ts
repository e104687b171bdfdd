// Memory copying: a word-by-word loop (metered per iteration) and memory.copy (metered per byte).

const BASE: usize = 65536;

function ensure(bytes: usize): void {
  const need = <i32>((BASE + 2 * bytes + 0xffff) >>> 16);
  const have = memory.size();
  if (need > have && memory.grow(need - have) < 0) unreachable();
}

/** Fills the source with a pattern derived from `seed`. */
export function fill(bytes: i32, seed: u32): void {
  ensure(<usize>bytes);
  let x = seed;
  for (let i = 0; i < bytes; i += 4) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    store<u32>(BASE + <usize>i, x);
  }
}

/** Copies `bytes` from the source to the destination `rounds` times with a 64-bit word loop; returns a checksum. */
export function copyLoop(bytes: i32, rounds: i32): u64 {
  ensure(<usize>bytes);
  const src = BASE;
  const dst = BASE + <usize>bytes;
  let sum: u64 = 0;
  for (let r = 0; r < rounds; r++) {
    for (let i: usize = 0; i < <usize>bytes; i += 8) {
      store<u64>(dst + i, load<u64>(src + i) + <u64>r);
    }
    sum += load<u64>(dst + <usize>((r * 8) % bytes & ~7));
  }
  return sum;
}

/** The same with memory.copy. */
export function bulkCopy(bytes: i32, rounds: i32): u64 {
  ensure(<usize>bytes);
  const src = BASE;
  const dst = BASE + <usize>bytes;
  let sum: u64 = 0;
  for (let r = 0; r < rounds; r++) {
    memory.copy(dst, src + <usize>(r & 7), <usize>bytes - 8);
    sum += load<u64>(dst);
  }
  return sum;
}
