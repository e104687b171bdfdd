/** `hostlink verify`: read the whole store and check it against its own hashes, in a child process. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { HOSTLINK_ERROR_CODES, HostlinkError, type HostlinkErrorCode } from '../../errors.js';
import type { StoreReport, VerifyStep } from '../../host/state/verify-store.js';
import { dataDirOf, DEFAULT_DATA_DIR, HOST_OPTIONS, parse, printJson } from '../common.js';

export const usage = `usage: hostlink verify [--data-dir DIR] [--json]

Reads every table of the store in DIR end to end and checks it against its own hashes: each contract's code
against its hash, each context's state tree and root against its entries (the root computed again from
scratch), and each recorded blob against its file in DIR/blobs (present, of the recorded size, hashing to its
id; every file is read whole). Nothing is written. Run it with the node stopped (it waits for the directory like the other commands).

The store's pages carry no checksums of their own: a damaged page is found only by reading it, and reading one
can crash the reader. The reading runs in a child process, so a crash is reported with the table or context it
was reading.

Exit status: 0 when everything matches, 1 when something does not (each problem is listed) or the store cannot
be read, 2 for wrong arguments.

  --data-dir DIR   the data directory (default ./${DEFAULT_DATA_DIR})
  --json           the report as JSON`;

const OPTIONS = { 'data-dir': HOST_OPTIONS['data-dir'], json: HOST_OPTIONS.json, help: HOST_OPTIONS.help } as const;

/** A progress line on stderr at most this often (a large store takes minutes). */
const PROGRESS_EVERY_MS = 1000;

const CHILD = fileURLToPath(new URL('../verify-child.js', import.meta.url));

type ChildLine = VerifyStep | { report: StoreReport } | { error: string; code: string };

const where = (s: VerifyStep | undefined): string => {
  if (s === undefined) return 'opening the store';
  if (s.step === 'table') return `reading table ${s.table}${s.entries > 0 ? ` (past ${s.entries.toLocaleString('en-US')} entries)` : ''}`;
  if (s.step === 'codes') return 'checking the contracts\' code';
  if (s.step === 'blobs') return `checking blob files${s.checked > 0 ? ` (past ${s.checked.toLocaleString('en-US')})` : ''}`;
  return `checking context ${s.context} (${s.index + 1} of ${s.of})`;
};

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, OPTIONS, usage);
  if (positionals.length !== 0) throw new HostlinkError('usage', `hostlink verify takes no arguments\n${usage}`);
  const dir = dataDirOf(values);

  const child = spawn(process.execPath, [CHILD, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let last: VerifyStep | undefined;
  let report: StoreReport | undefined;
  let failure: { error: string; code: string } | undefined;
  let stderr = '';
  let shown = Date.now();
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    // Only the tail is kept: it is shown when the child dies without saying why.
    stderr = (stderr + d).slice(-2000);
  });
  const lines = createInterface({ input: child.stdout });
  lines.on('line', (text) => {
    let msg: ChildLine;
    try {
      msg = JSON.parse(text) as ChildLine;
    } catch {
      stderr = (stderr + text + '\n').slice(-2000);
      return;
    }
    if ('report' in msg) report = msg.report;
    else if ('error' in msg) failure = msg;
    else {
      last = msg;
      if (!values.json && Date.now() - shown >= PROGRESS_EVERY_MS) {
        shown = Date.now();
        process.stderr.write(`hostlink verify: ${where(msg)}\n`);
      }
    }
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((done, fail) => {
    child.on('error', fail);
    child.on('close', (c, s) => done([c, s]));
  });

  if (failure !== undefined) {
    const kind = (HOSTLINK_ERROR_CODES as readonly string[]).includes(failure.code) ? (failure.code as HostlinkErrorCode) : 'internal';
    // A missing directory or one in use is said as the other commands say it; anything else that stopped the
    // walk (a store error, lmdb's own MDB_BAD_TXN on a damaged page) is damage, or a disk error.
    const err =
      kind === 'usage' || kind === 'not_found'
        ? new HostlinkError(kind, failure.error)
        : new HostlinkError('store', `the store in ${dir} cannot be read: ${where(last)} failed: ${failure.error.replace(/\.$/, '')}. Nothing was changed: if the disk is sound, the store is damaged; restore the directory from a backup.`);
    if (values.json) printJson({ data_dir: dir, ok: false, error: err.message });
    throw err;
  }
  if (report === undefined) {
    const how = signal !== null ? `crashed the reader (${signal})` : `ended the reader with exit status ${code}`;
    const detail = stderr.trim().split('\n').filter(Boolean).slice(-1)[0];
    const err = new HostlinkError(
      'store',
      `the store in ${dir} is damaged: ${where(last)} ${how}${detail ? ` (${detail})` : ''}. Nothing was changed: restore the directory from a backup.`,
    );
    if (values.json) printJson({ data_dir: dir, ok: false, error: err.message });
    throw err;
  }

  if (values.json) {
    printJson({ data_dir: dir, ok: report.problems.length === 0, ...report });
    return report.problems.length === 0 ? 0 : 1;
  }
  const entries = report.tables.reduce((n, t) => n + t.entries, 0);
  const bytes = report.tables.reduce((n, t) => n + t.bytes, 0);
  process.stdout.write(
    `read ${dir}: ${report.tables.length} tables, ${entries.toLocaleString('en-US')} entries (${bytes.toLocaleString('en-US')} bytes of keys and values); ` +
      `${report.codes} contract${report.codes === 1 ? '' : 's'}, ${report.contexts} context${report.contexts === 1 ? '' : 's'}, ${report.blobs} blob${report.blobs === 1 ? '' : 's'} checked\n`,
  );
  if (report.problems.length === 0) {
    process.stdout.write('every code matches its hash, every context its state root and every blob file its record\n');
    return 0;
  }
  for (const p of report.problems) process.stdout.write(`${p.kind} ${p.id}: ${p.problem}\n`);
  if (report.problems.some((p) => p.kind === 'blob')) {
    // A blob's content is all its id names: the same bytes uploaded again (a call that writes that blob) replace the
    // damaged file, without a restore.
    process.stderr.write(
      `hostlink: a missing or damaged blob file is replaced by the next call that writes the same content again (a blob's id is computed from its content), or restore ${join(dir, 'blobs')} from a backup\n`,
    );
  }
  process.stderr.write(
    `hostlink: ${report.problems.length} problem${report.problems.length === 1 ? '' : 's'} in the store in ${dir} (listed above). Nothing was changed: restore the directory from a backup.\n`,
  );
  return 1;
}
