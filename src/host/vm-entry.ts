/**
 * Which command starts a VM process. The fastest is Node started from the VM's start-up snapshot
 * (dist/vm-snapshot/vm.blob, built by scripts/build-vm-snapshot.mjs at build and install time): the VM's modules
 * come already evaluated, so a one-shot call does not load ~100 files first. A snapshot is only usable by the
 * Node that built it, with the same flags, at the same installation root, over the same compiled modules; Node
 * itself crashes on a corrupt or foreign blob. So the host checks all of that (checksums included) once per
 * blob, and otherwise falls back to the normal entry (`hostlink vm` through bin/hostlink.js), saying once on
 * stderr why. Reading and hashing the blob and every module took ~45 ms of each host's start (every `hostlink
 * call`): the build records each file's stamp (fileStamp) after checking its content, and a file whose stamp is
 * unchanged is not read again. `hostlink doctor` prints the same verdict. The sandbox, the secret on stdin and
 * the hello proof are the same for both entries: the snapshot holds code and constants, never anything of one run.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The installation root (the directory holding bin/ and dist/). */
export const INSTALL_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Where the snapshot and its description live by default. */
export const SNAPSHOT_DIR = join(INSTALL_ROOT, 'dist', 'vm-snapshot');

/**
 * The normal entry: `hostlink vm` through the CLI. (A separate entry without the CLI's dispatcher measured no
 * faster: the dispatcher loads each command only when used, so `hostlink vm` loads two files more than the VM.)
 */
export const CLI_ENTRY = join(INSTALL_ROOT, 'bin', 'hostlink.js');

/** Bumped when vm.json's meaning changes: an older description is stale. */
export const SNAPSHOT_FORMAT = 1;

/**
 * What follows `--snapshot-blob FILE` on a VM's command line: the same `bin/hostlink.js vm` as the normal entry
 * (Node does not run it: src/vm/snapshot-main.ts reads the options after it), so ps, /proc and tools that look for
 * `hostlink.js vm` see every VM alike.
 */
const SNAPSHOT_ARGV = [CLI_ENTRY, 'vm'];

/**
 * `off`: every VM starts from the normal entry (for comparisons, and to rule the snapshot out); an absolute path: the
 * snapshot directory to use instead of this installation's (a copy elsewhere, tests).
 */
export const SNAPSHOT_ENV = 'HOSTLINK_VM_SNAPSHOT';

export interface VmEntry {
  kind: 'snapshot' | 'cli';
  /** The command before the VM's own options (`--host ADDR` ...). */
  command: string[];
  /** The file the VM user must be able to read besides Node (the blob, or bin/hostlink.js). */
  file: string;
  /** Why the snapshot is not used (kind 'cli'). */
  reason?: string;
}

export interface VmEntryOptions {
  /** Node flags of every VM (a snapshot is only valid for the flags it was built with). */
  nodeFlags: readonly string[];
  /** false: the normal entry whatever the snapshot's state. Default: HOSTLINK_VM_SNAPSHOT unless 'off'. */
  snapshot?: boolean;
  /** Another snapshot directory (tests). */
  dir?: string;
}

interface SnapshotMeta {
  format: number;
  node: string;
  arch: string;
  platform: string;
  flags: string[];
  root: string;
  blob: string;
  sources: Record<string, string>;
  /** Stamps of the blob and of the source modules, each taken when its content was checked (verifiedStamps). */
  stamps?: SnapshotStamps;
}

export interface SnapshotStamps {
  blob: string;
  sources: Record<string, string>;
}

/** How the snapshot was found usable: by its files' stamps, or by reading and hashing them. */
export type SnapshotCheckedBy = 'stamps' | 'content';

const sha256 = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');

/** Verdicts by directory, valid while the blob and its description keep their stamps (fileStamp). */
const verdicts = new Map<string, { stamp: string; reason: string | undefined; by: SnapshotCheckedBy }>();
const warned = new Set<string>();

const stampOf = (dir: string): string => ['vm.json', 'vm.blob'].map((f) => fileStamp(join(dir, f)) ?? '-').join('|');

/**
 * A file's identity and last change as the kernel keeps them. Writing the file, renaming another over it or
 * changing its mode changes its ctime, which no caller can set back (utimes sets mtime, and ctime to now), so an
 * equal stamp means the file is the one whose stamp was taken.
 */
export function fileStamp(path: string): string | undefined {
  try {
    const s = statSync(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch {
    return undefined;
  }
}

/**
 * `digest` and the stamp of `path` if its content has that digest and the file did not change while it was read.
 * The digest is part of the record, so a description whose digests were edited afterwards is read in full again.
 */
function verifiedStamp(path: string, digest: string): string | undefined {
  const before = fileStamp(path);
  if (before === undefined || digestOf(path) !== digest) return undefined;
  return fileStamp(path) === before ? `${digest} ${before}` : undefined;
}

/** The SHA-256 (hex) of a file's content, or the error that kept it from being read. */
function digestOf(path: string): string | Error {
  try {
    return sha256(readFileSync(path));
  } catch (e) {
    return e as Error;
  }
}

/** Whether `path` still has the stamp recorded when its content was checked against `digest` (verifiedStamp). */
const stampHolds = (path: string, digest: string, recorded: string | undefined): boolean => recorded === `${digest} ${fileStamp(path) ?? '-'}`;

/**
 * The stamps the build records in vm.json: of the blob in `dir` and of each source module, each taken while its
 * content matched its checksum. Undefined when any does not (the host then reads them all and says which).
 */
export function verifiedStamps(dir: string, blobDigest: string, sources: Record<string, string>): SnapshotStamps | undefined {
  const blob = verifiedStamp(join(dir, 'vm.blob'), blobDigest);
  if (blob === undefined) return undefined;
  const stamps: SnapshotStamps = { blob, sources: {} };
  for (const [rel, digest] of Object.entries(sources)) {
    const stamp = verifiedStamp(join(INSTALL_ROOT, rel), digest);
    if (stamp === undefined) return undefined;
    stamps.sources[rel] = stamp;
  }
  return stamps;
}

/** Whether every file the snapshot depends on still has the stamp the build recorded when it checked it. */
function stampsHold(dir: string, meta: SnapshotMeta): boolean {
  const stamps = meta.stamps;
  if (stamps === undefined || typeof stamps.blob !== 'string' || stamps.sources === null || typeof stamps.sources !== 'object') return false;
  if (!stampHolds(join(dir, 'vm.blob'), meta.blob, stamps.blob)) return false;
  const sources = Object.entries(meta.sources ?? {});
  if (sources.length !== Object.keys(stamps.sources).length) return false;
  return sources.every(([rel, digest]) => Object.hasOwn(stamps.sources, rel) && stampHolds(join(INSTALL_ROOT, rel), digest, stamps.sources[rel]));
}

/** Why the snapshot in `dir` cannot start VMs with `nodeFlags` here (undefined when it can), and how that was found. */
function checkSnapshot(dir: string, nodeFlags: readonly string[]): { reason: string | undefined; by: SnapshotCheckedBy } {
  const meta = checkDescription(dir, nodeFlags);
  if (typeof meta === 'string') return { reason: meta, by: 'content' };
  if (stampsHold(dir, meta)) return { reason: undefined, by: 'stamps' };
  return { reason: checkContent(dir, meta), by: 'content' };
}

/** The snapshot's description if it was built for this Node, these flags and this installation; else why not. */
function checkDescription(dir: string, nodeFlags: readonly string[]): SnapshotMeta | string {
  let meta: SnapshotMeta;
  try {
    meta = JSON.parse(readFileSync(join(dir, 'vm.json'), 'utf8')) as SnapshotMeta;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? `no snapshot in ${dir} (not built)` : `${join(dir, 'vm.json')} is unreadable (${(e as Error).message})`;
  }
  if (meta.format !== SNAPSHOT_FORMAT) return `the snapshot's description has format ${String(meta.format)}, this Hostlink reads ${SNAPSHOT_FORMAT}`;
  if (meta.node !== process.version || meta.arch !== process.arch || meta.platform !== process.platform) {
    return `the snapshot was built by Node ${meta.node} (${meta.platform}-${meta.arch}), this is Node ${process.version} (${process.platform}-${process.arch})`;
  }
  if (JSON.stringify(meta.flags) !== JSON.stringify(nodeFlags)) return `the snapshot was built for VM flags ${JSON.stringify(meta.flags)}, VMs now use ${JSON.stringify(nodeFlags)}`;
  if (meta.root !== INSTALL_ROOT) return `the snapshot was built for the installation at ${meta.root}, this one is at ${INSTALL_ROOT}`;
  return meta;
}

/** Why the blob or a module it was built from is not the one the description names (read and hashed), if so. */
function checkContent(dir: string, meta: SnapshotMeta): string | undefined {
  for (const [rel, digest] of Object.entries(meta.sources ?? {})) {
    const found = digestOf(join(INSTALL_ROOT, rel));
    if (found instanceof Error) return `the snapshot's module ${rel} is gone (rebuilt since)`;
    if (found !== digest) return `the compiled module ${rel} changed after the snapshot was built`;
  }
  const blob = digestOf(join(dir, 'vm.blob'));
  if (blob instanceof Error) return `${join(dir, 'vm.blob')} is unreadable (${blob.message})`;
  if (blob !== meta.blob) return `${join(dir, 'vm.blob')} does not match its checksum (corrupt or replaced)`;
  return undefined;
}

/**
 * Whether the snapshot in `dir` is usable here (checked once per blob version): undefined when it is, else why
 * not. The first refusal of each reason is said on stderr.
 */
export function snapshotProblem(nodeFlags: readonly string[], dir: string = snapshotDir()): string | undefined {
  return snapshotVerdict(nodeFlags, dir).reason;
}

/** snapshotProblem, and whether the files' stamps sufficed or they were read and hashed. */
export function snapshotVerdict(nodeFlags: readonly string[], dir: string = snapshotDir()): { reason: string | undefined; by: SnapshotCheckedBy } {
  const stamp = stampOf(dir);
  const key = `${dir}\0${JSON.stringify(nodeFlags)}`;
  let v = verdicts.get(key);
  if (v === undefined || v.stamp !== stamp) {
    v = { stamp, ...checkSnapshot(dir, nodeFlags) };
    verdicts.set(key, v);
  }
  return { reason: v.reason, by: v.by };
}

/** The snapshot directory in use: HOSTLINK_VM_SNAPSHOT when it is a path, else this installation's. */
export function snapshotDir(env: NodeJS.ProcessEnv = process.env): string {
  const v = env[SNAPSHOT_ENV];
  return v !== undefined && isAbsolute(v) ? v : SNAPSHOT_DIR;
}

/** The command that starts a VM here: from the snapshot when it is usable, else `hostlink vm`. */
export function vmEntryCommand(options: VmEntryOptions): VmEntry {
  const cli = (reason?: string): VmEntry => ({
    kind: 'cli',
    command: [process.execPath, ...options.nodeFlags, CLI_ENTRY, 'vm'],
    file: CLI_ENTRY,
    ...(reason !== undefined ? { reason } : {}),
  });
  const env = process.env[SNAPSHOT_ENV];
  const wanted = options.snapshot ?? env !== 'off';
  if (!wanted) return cli(options.snapshot === false ? 'snapshot not wanted by the caller' : `${SNAPSHOT_ENV}=off`);
  const dir = options.dir ?? snapshotDir();
  const problem = snapshotProblem(options.nodeFlags, dir);
  if (problem !== undefined) {
    // A snapshot that was never built is the normal state of a checkout without a build: no warning for that.
    if (!problem.startsWith('no snapshot') && !warned.has(problem)) {
      warned.add(problem);
      process.stderr.write(`hostlink: not using the VM start-up snapshot: ${problem}; VMs start from the normal entry (slower cold calls). Rebuild it with \`node scripts/build-vm-snapshot.mjs\` in ${INSTALL_ROOT}\n`);
    }
    return cli(problem);
  }
  const blob = join(dir, 'vm.blob');
  return { kind: 'snapshot', command: [process.execPath, ...options.nodeFlags, '--snapshot-blob', blob, ...SNAPSHOT_ARGV], file: blob };
}
