/** The child's side of bench/child.ts: node child-main.js MODULE EXPORT JSON-ARGS; the result's JSON goes to descriptor 3. */
import { writeSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [module, name, args] = process.argv.slice(2);
const mod = (await import(pathToFileURL(module!).href)) as Record<string, (...a: unknown[]) => unknown>;
const fn = mod[name!];
if (typeof fn !== 'function') throw new Error(`${module} has no export ${name}`);
// JSON has no undefined: an omitted optional argument arrives as null.
const result = await fn(...(JSON.parse(args!) as unknown[]).map((a) => (a === null ? undefined : a)));
writeSync(3, JSON.stringify(result));
process.exit(0);
