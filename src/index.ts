/**
 * Hostlink's public API for node code that embeds the host (the CLI is a thin layer over the same calls).
 * docs/embedding.md is the user's guide; docs/architecture.md maps the rest of the code. Contract tests use the
 * `hostlink/testing` entry point (src/testing/index.ts).
 */
export { Host, DEFAULT_HOST_OPTIONS } from './host/host.js';
export type { CallRequest, ExecutionMode, FollowUp, HostOptions, Outcome } from './host/host.js';
export type { VmCrash } from './host/job.js';
export type { Transport } from './host/supervisor.js';
export { openLmdbStore } from './host/state/lmdb-store.js';
export { createMemoryStore } from './host/state/memory-store.js';
export type { KvStore, KvTxn, KvReader, TableName } from './host/state/kv.js';
export { computeRootFromScratch, stateRoot, emptyRoot } from './host/state/merkle.js';

export { HostlinkError, GuestError, isHostlinkError, GUEST_ERROR_NAMES, HOSTLINK_ERROR_CODES } from './errors.js';
export type { GuestErrorName, HostlinkErrorCode } from './errors.js';

export { buildMessage, parseMessage, DEFAULT_LIMITS, DEFAULT_GAS_LIMIT } from './protocol/message.js';
export type { ExecutionMessage, MessageInit, VmLimits, FloatPolicy } from './protocol/message.js';
export { encodeCalldata, decodeCalldata, calldataToJson, calldataEquals, Address } from './protocol/calldata.js';
export type { CalldataValue, CalldataMap } from './protocol/calldata.js';
export { encodeResult, decodeResult } from './protocol/result.js';
export type { ExecutionResult } from './protocol/result.js';
export { PROTOCOL_VERSION_MIN, PROTOCOL_VERSION_MAX, MAX_FRAME_BYTES } from './protocol/generated.js';
export { HOSTLINK_VERSION } from './version.js';

// Contract tooling: the ABI a build embeds, and the deploy-time checks with their fix hints.
export { readAbi, deriveAbi, embedAbi, methodNames, ABI_SECTION, ABI_FORMAT } from './contract/abi.js';
export type { ContractAbi, AbiMethod, AbiEvent } from './contract/abi.js';
export { checkContract, fixHint } from './contract/check.js';
export type { CheckFailure } from './contract/check.js';
