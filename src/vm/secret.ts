/**
 * The VM's per-process secret, read from stdin at start-up. The launcher writes it (hex, one line) to the
 * VM's stdin pipe and closes the pipe, so the secret is never on the command line, in the environment or in a
 * file. The read is synchronous and happens before the VM connects.
 *
 * A VM started by hand (stdin a terminal, /dev/null or empty) has no secret: it still runs against hosts that
 * do not check (scripted test hosts), and a Hostlink host closes its connection unanswered.
 */
import { readSync } from 'node:fs';
import { isatty } from 'node:tty';
import { HostlinkError } from '../errors.js';
import { VM_SECRET_BYTES } from '../protocol/generated.js';

/** More than a hex secret and a newline ever need; anything longer is refused rather than read on. */
const MAX_STDIN_BYTES = 1024;
// Created on first use: a start-up snapshot cannot hold a SharedArrayBuffer (src/vm/snapshot-main.ts).
let sleeper: Int32Array | undefined;

/** Reads stdin to its end; undefined when there is no secret. Throws HostlinkError('usage') for a malformed one. */
export function readVmSecret(fd = 0): Uint8Array | undefined {
  if (isatty(fd)) return undefined;
  const buf = Buffer.alloc(MAX_STDIN_BYTES + 1);
  let got = 0;
  for (;;) {
    let n: number;
    try {
      n = readSync(fd, buf, got, buf.length - got, null);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (code === 'EAGAIN' || code === 'EINTR') {
        Atomics.wait((sleeper ??= new Int32Array(new SharedArrayBuffer(4))), 0, 0, 1); // a non-blocking stdin: wait for the launcher's write
        continue;
      }
      if (code === 'EOF' || code === 'EBADF') break; // no stdin at all
      throw new HostlinkError('usage', `could not read the VM secret from stdin: ${(e as Error).message}`);
    }
    if (n === 0) break;
    got += n;
    if (got > MAX_STDIN_BYTES) throw new HostlinkError('usage', `stdin holds more than ${MAX_STDIN_BYTES} bytes: expected only the VM secret`);
  }
  const text = buf.subarray(0, got).toString('utf8').trim();
  if (text === '') return undefined;
  if (!new RegExp(`^[0-9a-f]{${VM_SECRET_BYTES * 2}}$`).test(text)) {
    throw new HostlinkError('usage', `the VM secret on stdin must be ${VM_SECRET_BYTES * 2} lowercase hex characters (the host writes it there)`);
  }
  return Buffer.from(text, 'hex');
}
