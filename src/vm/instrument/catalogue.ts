import { HOST_FUNCTIONS, HOST_MODULE } from '../host-functions.generated.js';
import type { NumType } from './policy.js';

/**
 * The usual ModulePolicy.checkImport: a guest may import exactly the host functions of the catalogue
 * (protocol/host-functions.json), from module "env", with their declared signature.
 */
export function checkCatalogueImport(module: string, name: string, type: { params: NumType[]; results: NumType[] }): string | undefined {
  if (module !== HOST_MODULE) return 'unknown import module';
  if (!Object.prototype.hasOwnProperty.call(HOST_FUNCTIONS, name)) return 'unknown host function';
  const def = (HOST_FUNCTIONS as Record<string, { params: readonly string[]; result: string | null }>)[name]!;
  const results = def.result === null ? [] : [def.result];
  if (def.params.join(',') !== type.params.join(',') || results.join(',') !== type.results.join(',')) return 'wrong signature';
  return undefined;
}
