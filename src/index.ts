/**
 * Hostlink's public API for node code that embeds the host (the CLI is a thin layer over the same calls).
 * docs/embedding.md is the user's guide; docs/architecture.md maps the rest of the code. Contract tests use the
 * `hostlink/testing` entry point (src/testing/index.ts).
 */
export { Host } from './host/host.js';
export { DEFAULT_HOST_OPTIONS } from './host/options.js';
export type { CallRequest, ExecutionMode, FollowUp, FollowUpHalt, HostOptions, Outcome } from './host/host.js';
export type { VmCrash } from './host/job.js';
export type { EarlyRunStats } from './host/speculation.js';
export type { CommitStats } from './host/commit-group.js';
export { HostEvents, HOST_EVENT_NAMES, callReason } from './host/events.js';
export type { CallInfo, CallStarted, CallFinished, CallFailed, CallHalted, CallDurations, VmLaunched, VmExited, VmCrashed, HostEventMap, HostEventName, HostListener } from './host/events.js';
export type { TraceEntry, TraceRead, MethodCount } from './host/call-trace.js';
export { jsonLogger, silentLogger } from './host/logger.js';
export { HostMetrics } from './metrics/host-metrics.js';
export type { HostMetricsOptions } from './metrics/host-metrics.js';
export { NodeServer } from './server/server.js';
export type { ServeOptions } from './server/server.js';
export type { HostLogger, LogLevel } from './host/logger.js';
export type { Transport } from './host/supervisor.js';
export type { RemoteWorkers, RemoteWorkersOptions } from './worker/attach.js';
export type { RemoteLauncher, WorkerSlots } from './worker/remote-launcher.js';
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

// Non-deterministic blocks (docs/nondet.md): block results, the execution hash, the consensus helper.
export { encodeBlockResult, decodeBlockResult, describeBlockResult } from './protocol/nondet.js';
export type { BlockResult } from './protocol/nondet.js';
export type { NondetRole } from './protocol/message.js';
export type { NondetDisagreement } from './protocol/effects.js';
export { executionHash, EXECUTION_HASH_VERSION } from './protocol/execution-hash.js';
export { runConsensus, copyStore, decide } from './host/consensus.js';
export type { ConsensusOptions, ConsensusReport, Decision, ValidatorVote, Vote } from './host/consensus.js';
// Contract tooling: the ABI a build embeds, and the deploy-time checks with their fix hints.
export { readAbi, deriveAbi, embedAbi, methodNames, ABI_SECTION, ABI_FORMAT } from './contract/abi.js';
export type { ContractAbi, AbiMethod, AbiEvent } from './contract/abi.js';
export { checkContract, fixHint } from './contract/check.js';
export type { CheckFailure } from './contract/check.js';
