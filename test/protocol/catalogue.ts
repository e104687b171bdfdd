/** Test helper: checks an error message against the closed catalogue of result reasons (protocol/reasons.json). */
import assert from 'node:assert/strict';
import { GUEST_ERROR_NAMES } from '../../src/errors.js';
import { RESULT_REASONS, reasonOf, type ResultReason } from '../../src/protocol/reasons.js';

/** Asserts `message`, reported with `code`, starts with a catalogued reason of that code. */
export function assertCatalogued(code: string, message: string, where: string): void {
  const reason = reasonOf(message);
  assert.ok(reason !== undefined, `${where}: ${JSON.stringify(message)} does not start with a reason of protocol/reasons.json`);
  const expected = (GUEST_ERROR_NAMES as readonly string[]).includes(reason) ? 'vm_error' : RESULT_REASONS[reason as ResultReason].code;
  assert.equal(code, expected, `${where}: ${JSON.stringify(message)} is reported as ${code}, but its reason ${reason} is a ${expected}`);
}
