/**
 * Actions and the artifact (delta) format, version 1 (docs/crdt.md, "Delta format"). An action is the new
 * state of one cell as a delta (a join-semilattice element), so applying actions is joining them into the
 * stored cells: the order and repetitions do not matter. decodeArtifact is strict: a wrong version, an
 * unknown tag or kind, a non-canonical slot list, a truncated field or a trailing byte is a CrdtFormatError.
 */
import { createHash } from 'node:crypto';
import { ByteReader, ByteWriter } from './bytes.js';
import { joinCells, joinRoots, joinSlots, KIND_CODES, kindOfCode, type Kind, type LwwCell, type MemberKind, type RootDoc, type Slot } from './model.js';
import { ID_LENGTH, readCell, readRoot, readSlots, writeCell, writeRoot, writeSlots } from './records.js';
import { extend } from '../../extend.js';
import { latin1 } from '../../latin1.js';

export const ARTIFACT_VERSION = 1;

export type Action =
  | { type: 'create'; id: Uint8Array; kind: Kind; time: bigint }
  | { type: 'member'; id: Uint8Array; kind: MemberKind; member: Uint8Array; slots: Slot[] }
  | { type: 'element'; id: Uint8Array; index: bigint; cell: LwwCell }
  | { type: 'lww'; id: Uint8Array; cell: LwwCell }
  | { type: 'counter'; id: Uint8Array; executor: Uint8Array; share: bigint }
  | { type: 'frozen'; id: Uint8Array; value: Uint8Array }
  | { type: 'root'; root: RootDoc };

const TAGS = { create: 1, member: 2, element: 3, lww: 4, counter: 5, frozen: 6, root: 7 } as const;

/** Key of a frozen value: SHA-256(u32le(len) || bytes), the Borsh encoding of a Vec<u8> hashed. */
export function frozenHash(value: Uint8Array): Uint8Array {
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, value.length, true);
  return Uint8Array.from(createHash('sha256').update(len).update(value).digest());
}


/** The cell an action changes: two pending actions on the same cell are joined into one. */
export function cellOf(a: Action): string {
  switch (a.type) {
    case 'create':
      return 'c' + latin1(a.id);
    case 'member':
      return 'm' + latin1(a.id) + latin1(a.member);
    case 'element':
      return 'e' + latin1(a.id) + a.index.toString(16);
    case 'lww':
      return 'l' + latin1(a.id);
    case 'counter':
      return 'n' + latin1(a.id) + latin1(a.executor);
    case 'frozen':
      return 'f' + latin1(a.id) + latin1(frozenHash(a.value));
    case 'root':
      return 'r';
  }
}

/** Join of two actions on the same cell (cellOf equal). */
export function joinActions(a: Action, b: Action): Action {
  if (a.type === 'member' && b.type === 'member') return extend(a, { slots: joinSlots(a.slots, b.slots) });
  if (a.type === 'element' && b.type === 'element') return extend(a, { cell: joinCells(a.cell, b.cell) });
  if (a.type === 'lww' && b.type === 'lww') return extend(a, { cell: joinCells(a.cell, b.cell) });
  if (a.type === 'counter' && b.type === 'counter') return a.share >= b.share ? a : b;
  if (a.type === 'root' && b.type === 'root') return { type: 'root', root: joinRoots(a.root, b.root) };
  if (a.type === 'create' && b.type === 'create') return a.time >= b.time ? a : b;
  return a; // frozen: the same content
}

/** Every clock time an action carries (the replica's clock is the maximum over all applied actions). */
export function actionTimes(a: Action): bigint[] {
  switch (a.type) {
    case 'create':
      return [a.time];
    case 'member':
      return a.slots.flatMap((s) => (s.live === null ? [s.removed] : [s.removed, s.live.time]));
    case 'element':
    case 'lww':
      return [a.cell.time];
    case 'root':
      return [a.root.created, a.root.updated];
    case 'counter':
    case 'frozen':
      return [];
  }
}

export function encodeArtifact(actions: readonly Action[]): Uint8Array {
  const w = new ByteWriter().u8(ARTIFACT_VERSION).u32(actions.length);
  for (const a of actions) {
    w.u8(TAGS[a.type]);
    switch (a.type) {
      case 'create':
        w.raw(a.id).u8(KIND_CODES[a.kind]).u64(a.time);
        break;
      case 'member':
        w.raw(a.id).u8(KIND_CODES[a.kind]).bytes(a.member);
        writeSlots(w, a.slots);
        break;
      case 'element':
        w.raw(a.id).u64(a.index);
        writeCell(w, a.cell);
        break;
      case 'lww':
        w.raw(a.id);
        writeCell(w, a.cell);
        break;
      case 'counter':
        w.raw(a.id).raw(a.executor).u64(a.share);
        break;
      case 'frozen':
        w.raw(a.id).bytes(a.value);
        break;
      case 'root':
        writeRoot(w, a.root);
        break;
    }
  }
  return w.finish();
}

function readAction(r: ByteReader): Action {
  const tag = r.u8('action tag');
  if (tag === TAGS.root) return { type: 'root', root: readRoot(r) };
  const id = r.fixed(ID_LENGTH, 'collection id');
  switch (tag) {
    case TAGS.create: {
      const code = r.u8('kind');
      const kind = kindOfCode(code) ?? r.fail(`unknown collection kind ${code}`);
      return { type: 'create', id, kind, time: r.u64('time') };
    }
    case TAGS.member: {
      const code = r.u8('kind');
      const kind = kindOfCode(code);
      if (kind !== 'map' && kind !== 'set' && kind !== 'user') return r.fail(`kind ${code} has no members`);
      const member = r.bytes('member');
      const slots = readSlots(r, kind === 'set');
      if (kind === 'user') {
        // Only the owner writes a user's entry: the member is the owner's 32-byte key and its only slot's executor.
        if (member.length !== ID_LENGTH) r.fail('a user storage member is a 32-byte executor id');
        if (slots.some((s) => Buffer.compare(s.executor, member) !== 0)) r.fail('a user storage entry changed by another executor');
      }
      return { type: 'member', id, kind, member, slots };
    }
    case TAGS.element:
      return { type: 'element', id, index: r.u64('index'), cell: readCell(r) };
    case TAGS.lww:
      return { type: 'lww', id, cell: readCell(r) };
    case TAGS.counter: {
      const executor = r.fixed(ID_LENGTH, 'executor');
      const share = r.u64('share');
      if (share === 0n) r.fail('a counter share is at least 1');
      return { type: 'counter', id, executor, share };
    }
    case TAGS.frozen:
      return { type: 'frozen', id, value: r.bytes('value') };
    default:
      return r.fail(`unknown action tag ${tag}`);
  }
}

export function decodeArtifact(bytes: Uint8Array): Action[] {
  const r = new ByteReader(bytes, 'artifact');
  const version = r.u8('version');
  if (version !== ARTIFACT_VERSION) r.fail(`unsupported artifact version ${version} (this VM reads version ${ARTIFACT_VERSION})`);
  const n = r.u32('action count');
  const actions: Action[] = [];
  for (let i = 0; i < n; i++) actions.push(readAction(r));
  r.end();
  return actions;
}
