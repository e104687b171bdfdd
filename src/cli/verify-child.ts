/**
 * The reading half of `hostlink verify`, in a process of its own: a damaged LMDB page can crash whoever reads it
 * (SIGBUS, SIGSEGV, an abort inside lmdb), and the command must still say what it found. Writes one JSON line per
 * step (src/host/state/verify-store.ts), then `{"report": …}`, or `{"error": …, "code": …}` and exit 1.
 *
 *   node verify-child.js DATA_DIR
 */
import { join } from 'node:path';
import { HostlinkError } from '../errors.js';
import { blobFileProblem } from '../host/node/blob-content.js';
import { verifyStore } from '../host/state/verify-store.js';
import { hostOptions, printJson, withHost } from './common.js';

const line = (value: unknown): void => {
  printJson(value);
};

try {
  const dataDir = process.argv[2];
  if (dataDir === undefined) throw new HostlinkError('usage', 'verify-child needs the data directory');
  const report = await withHost(
    hostOptions({ 'data-dir': dataDir }),
    async (host) => {
      // One read transaction for the whole walk: every root is compared with the entries of the same commit.
      const view = host.store.snapshot();
      try {
        const blobDir = join(dataDir, 'blobs');
        return verifyStore(view, line, (t) => host.store.entryCount?.(t), (id, size) => blobFileProblem(blobDir, id, size));
      } finally {
        view.release();
      }
    },
    'read',
  );
  line({ report });
} catch (e) {
  const err = e instanceof HostlinkError ? e : new HostlinkError('internal', e instanceof Error ? e.message : String(e));
  line({ error: err.message, code: err.code });
  process.exitCode = 1;
}
