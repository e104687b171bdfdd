/**
 * A contract's description (ABI): its methods with their input and output shapes, and its events. `hostlink
 * build` derives it from the compiled module's exports (the truth about what can be called) and the doc
 * comments of the AssemblyScript entry file (what the author says about each method), and embeds it in the
 * module as the custom section `hostlink.abi`. The VM ignores custom sections, so the ABI never changes what a
 * call does; it only describes.
 *
 * Annotations, in the doc comment right above `export function NAME(): void`:
 *   @input  SHAPE        the input JSON's shape, e.g. {"key": "string"}   (JSON if it parses, else kept as text)
 *   @output SHAPE        the returned JSON's shape
 *   @view                the method only reads state (advisory: `hostlink view` runs any method without applying)
 *   @event KIND SHAPE    an event the method emits
 * Events are also collected from `emit("KIND", ...)` calls with a literal kind.
 */
import { HostlinkError } from '../errors.js';
import { scanJson } from '../json-check.js';
import { MAX_ABI_BYTES, MAX_ABI_JSON_DEPTH, MAX_ABI_JSON_ITEMS } from '../protocol/bounds.generated.js';
import { MAX_METHOD_NAME_LENGTH_LIMIT } from '../protocol/limits.generated.js';
import { isMethodExport, isRuntimeHelper, methodNameRule } from '../protocol/method-name.js';
import { readModule } from '../vm/instrument/reader.js';
import { customSection, readCustomSection } from './sections.js';
import { extend } from '../extend.js';

export const ABI_SECTION = 'hostlink.abi';
export const ABI_FORMAT = 'hostlink-abi/1';

/** A shape is the JSON the author wrote after @input/@output/@event, or its text when it is not JSON. */
export type AbiShape = unknown;

export interface AbiMethod {
  name: string;
  doc?: string;
  input?: AbiShape;
  output?: AbiShape;
  view?: boolean;
}

export interface AbiEvent {
  kind: string;
  data?: AbiShape;
}

export interface ContractAbi {
  format: typeof ABI_FORMAT;
  name?: string;
  methods: AbiMethod[];
  events: AbiEvent[];
}

/**
 * The exported functions taking and returning nothing, except the AssemblyScript runtime's own `__`-prefixed
 * helpers, in export order (deterministic: the module's bytes): split into those a call can name (the method
 * name rule at the longest max_method_name_length any node allows) and those it cannot (`ns.fn`, a space, a
 * name of a megabyte), which no VM runs.
 */
function entryPoints(wasm: Uint8Array): { callable: string[]; uncallable: string[] } {
  const m = readModule(wasm);
  const importedFunctions = m.imports.filter((i) => i.kind === 0);
  const callable: string[] = [];
  const uncallable: string[] = [];
  for (const e of m.exports) {
    if (e.kind !== 0 || isRuntimeHelper(e.name)) continue;
    const typeIndex = e.index < importedFunctions.length ? importedFunctions[e.index]?.typeIndex : m.functions[e.index - importedFunctions.length];
    const type = typeIndex === undefined ? undefined : m.types[typeIndex];
    if (type === undefined || type.params.length !== 0 || type.results.length !== 0) continue;
    (isMethodExport(e.name, type.params.length, type.results.length) ? callable : uncallable).push(e.name);
  }
  return { callable, uncallable };
}

/** Names of the callable methods of a module (entryPoints): what `inspect`, the ABI and the node list. */
export function methodNames(wasm: Uint8Array): string[] {
  return entryPoints(wasm).callable;
}

/** Longest part of an uncallable export's name shown: a name may be megabytes long. */
const SHOWN_NAME_CHARS = 64;

/**
 * The exported functions no call can name, each name cut to SHOWN_NAME_CHARS with its length: for the warning
 * of `hostlink inspect` and `check` (the author likely meant them as methods).
 */
export function uncallableExports(wasm: Uint8Array): string[] {
  return entryPoints(wasm).uncallable.map((n) => (n.length > SHOWN_NAME_CHARS ? `${n.slice(0, SHOWN_NAME_CHARS)}… (${n.length} characters)` : n));
}

/** One line naming the exports no call can name (uncallableExports), or undefined when none. */
export function uncallableWarning(uncallable: readonly string[]): string | undefined {
  if (uncallable.length === 0) return undefined;
  const shown = uncallable.slice(0, 10).map((n) => JSON.stringify(n)).join(', ') + (uncallable.length > 10 ? `, … (${uncallable.length} in all)` : '');
  return `the module exports functions no call can name, not listed as methods: ${shown}; ${methodNameRule(MAX_METHOD_NAME_LENGTH_LIMIT)}: rename them, or export them under such a name`;
}

function parseShape(text: string): AbiShape {
  const t = text.trim();
  try {
    return JSON.parse(t) as unknown;
  } catch {
    return t;
  }
}

export interface DocTags {
  doc: string;
  input?: AbiShape;
  output?: AbiShape;
  view: boolean;
  events: AbiEvent[];
}

/** The text of a `/** ... *\/` comment without its stars, split into prose and @tags. */
export function parseDoc(comment: string): DocTags {
  const lines = comment
    .replace(/^\/\*\*/, '')
    .replace(/\*\/$/, '')
    .split('\n')
    .map((l) => l.replace(/^\s*\*\s?/, ''));
  const prose: string[] = [];
  const tags: { tag: string; text: string }[] = [];
  for (const line of lines) {
    const m = /^\s*@(\w+)\s*(.*)$/.exec(line);
    if (m) tags.push({ tag: m[1]!, text: m[2]! });
    else if (tags.length > 0 && line.trim() !== '') tags[tags.length - 1]!.text += '\n' + line;
    else prose.push(line);
  }
  const out: DocTags = { doc: prose.join(' ').replace(/\s+/g, ' ').trim(), view: false, events: [] };
  for (const { tag, text } of tags) {
    if (tag === 'input') out.input = parseShape(text);
    else if (tag === 'output') out.output = parseShape(text);
    else if (tag === 'view') out.view = true;
    else if (tag === 'event') {
      const m = /^(\S+)\s*([\s\S]*)$/.exec(text.trim());
      if (m) out.events.push({ kind: m[1]!, ...(m[2]!.trim() ? { data: parseShape(m[2]!) } : {}) });
    }
  }
  return out;
}

/** Doc comments of the `export function NAME` declarations of an AssemblyScript source. */
export function docComments(source: string): Map<string, DocTags> {
  const out = new Map<string, DocTags>();
  const re = /(\/\*\*(?:[^*]|\*(?!\/))*\*\/)\s*export\s+function\s+([A-Za-z_$][\w$]*)/g;
  for (let m = re.exec(source); m !== null; m = re.exec(source)) out.set(m[2]!, parseDoc(m[1]!));
  return out;
}

/** Event kinds passed as a literal to emit()/emitWithHandler() in the sources. */
export function emittedKinds(sources: readonly string[]): string[] {
  const kinds = new Set<string>();
  const re = /\bemit(?:WithHandler)?\s*(?:<[^>]*>)?\s*\(\s*(["'])((?:(?!\1)[^\\\n])*)\1/g;
  for (const s of sources) for (let m = re.exec(s); m !== null; m = re.exec(s)) kinds.add(m[2]!);
  return [...kinds];
}

/** The ABI of a compiled module, from its exports and (optionally) the sources it was built from. */
export function deriveAbi(wasm: Uint8Array, entrySource: string, allSources: readonly string[], name?: string): ContractAbi {
  const docs = docComments(entrySource);
  const events = new Map<string, AbiEvent>();
  const methods = methodNames(wasm).map((n): AbiMethod => {
    const d = docs.get(n);
    if (!d) return { name: n };
    for (const e of d.events) events.set(e.kind, e);
    return {
      name: n,
      ...(d.doc ? { doc: d.doc } : {}),
      ...(d.input !== undefined ? { input: d.input } : {}),
      ...(d.output !== undefined ? { output: d.output } : {}),
      ...(d.view ? { view: true } : {}),
    };
  });
  for (const kind of emittedKinds(allSources)) if (!events.has(kind)) events.set(kind, { kind });
  return { format: ABI_FORMAT, ...(name ? { name } : {}), methods, events: [...events.values()] };
}

/** The module with its ABI section replaced (any earlier `hostlink.abi` section is dropped). */
export function embedAbi(wasm: Uint8Array, abi: ContractAbi): Uint8Array {
  const bytes = new TextEncoder().encode(JSON.stringify(abi));
  if (bytes.length > MAX_ABI_BYTES) {
    throw new HostlinkError('usage', `the contract's ABI is ${bytes.length} bytes, over max_abi_bytes (${MAX_ABI_BYTES}), and nodes would ignore it: shorten its doc comments`);
  }
  return customSection(wasm, ABI_SECTION, bytes);
}

/** The ABI's own structure (shapes inside it are free-form): what readers of methods and events rely on. */
function isAbi(abi: unknown): abi is ContractAbi {
  if (abi === null || typeof abi !== 'object') return false;
  const a = abi as Record<string, unknown>;
  const objects = (list: unknown): list is Record<string, unknown>[] => Array.isArray(list) && list.every((x) => x !== null && typeof x === 'object' && !Array.isArray(x));
  return (
    a['format'] === ABI_FORMAT &&
    objects(a['methods']) &&
    a['methods'].every((m) => typeof m['name'] === 'string') &&
    (a['events'] === undefined || (objects(a['events']) && a['events'].every((e) => typeof e['kind'] === 'string')))
  );
}

/** The module's `hostlink.abi` section as its author wrote it, when it is one; undefined when absent or malformed. */
function embeddedAbi(wasm: Uint8Array): ContractAbi | undefined {
  const payload = readCustomSection(wasm, ABI_SECTION);
  if (payload === undefined || payload.length > MAX_ABI_BYTES) return undefined;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(payload);
    // Bounded before it is built: a module's author chose these bytes, and whoever describes the module (a
    // node serving the studio) must not pay seconds or a stack overflow for them.
    if (scanJson(text, { maxDepth: MAX_ABI_JSON_DEPTH, maxItems: MAX_ABI_JSON_ITEMS }) !== undefined) return undefined;
    const abi = JSON.parse(text) as unknown;
    return isAbi(abi) ? abi : undefined;
  } catch {
    return undefined; // a malformed section describes nothing: the exports do
  }
}

export interface DescribedModule {
  /** The methods are the module's callable exports, in export order; an embedded ABI adds their shapes and docs. */
  abi: ContractAbi;
  /** Whether the module has a `hostlink.abi` section that was used. */
  embedded: boolean;
  /** Methods the embedded ABI lists that the module does not export as callable methods: left out of `abi`. */
  unexported: string[];
}

/**
 * A module's description. The callable methods are always its exports (methodNames): the ABI section is the
 * author's claim, which the VM never reads, so it may name methods that do not exist and leave out ones that do
 * (a studio or `hostlink codes` showing it would hide a callable method). An embedded ABI only adds shapes and
 * docs to the exports it names; its entries naming no export are dropped and returned in `unexported`, and
 * exports it does not name are listed bare. A module without a usable section is described by its exports.
 */
export function readAbi(wasm: Uint8Array): DescribedModule {
  const exported = methodNames(wasm);
  const claimed = embeddedAbi(wasm);
  if (claimed === undefined) return { abi: { format: ABI_FORMAT, methods: exported.map((name) => ({ name })), events: [] }, embedded: false, unexported: [] };
  const byName = new Map<string, AbiMethod>();
  for (const m of claimed.methods) if (!byName.has(m.name)) byName.set(m.name, m);
  const callable = new Set(exported);
  const methods = exported.map((name): AbiMethod => extend(byName.get(name) ?? { name }, { name }));
  // An `events` the author left out is an empty list: readers take `events.length`.
  const abi: ContractAbi = extend(claimed, { format: ABI_FORMAT, methods, events: claimed.events ?? [] });
  return { abi, embedded: true, unexported: [...byName.keys()].filter((name) => !callable.has(name)) };
}

/** One line naming the ABI entries a description dropped (hostlink inspect, check), or undefined when none. */
export function unexportedWarning(unexported: readonly string[]): string | undefined {
  if (unexported.length === 0) return undefined;
  const shown = unexported.slice(0, 10).join(', ') + (unexported.length > 10 ? `, … (${unexported.length} in all)` : '');
  return `the module's ABI section lists methods it does not export, left out: ${shown}; rebuild it with hostlink build so the section matches the exports`;
}
