/**
 * Checks of the numbers a Host is given (HostOptions, per-call options): each is an integer in a stated
 * range, or the call fails at once with a one-line HostlinkError('usage') naming the option and the range.
 * Without this a deadline above 2^31-1 ms silently became 1 ms (Node's timer overflow).
 */
import { HostlinkError } from '../errors.js';
import { MAX_DEADLINE_MS, MAX_INPUT_BYTES } from '../protocol/bounds.generated.js';
import { LIMIT_JSON_NAMES, limitProblem, type VmLimits } from '../protocol/message.js';

/** What a Host uses for the options it is not given (HostOptions). */
export const DEFAULT_HOST_OPTIONS = {
  transport: 'unix',
  mode: 'pool',
  poolSize: 2,
  deadlineMs: 10_000,
  killGraceMs: 500,
  commitGroupMs: 4,
} as const;

/** Most VM processes one pool may run (each is a process of its own). */
export const MAX_POOL_SIZE = 1024;
/** Group commit holds a write at most this long (a second: beyond it a hold is a stall, not a group). */
export const MAX_COMMIT_GROUP_MS = 1000;
/** Most follow-up calls per call and levels below it. */
export const MAX_FOLLOW_UPS = 1024;
/** The largest gas limit (the message's gas_limit is a signed 64-bit integer's range). */
export const MAX_GAS = (1n << 63n) - 1n;

export function checkInteger(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new HostlinkError('usage', `${name} must be an integer from ${min} to ${max} (got ${String(value)})`);
  }
}

export function checkGas(name: string, value: unknown): void {
  if (typeof value !== 'bigint' || value < 0n || value > MAX_GAS) {
    throw new HostlinkError('usage', `${name} must be a bigint from 0 to ${MAX_GAS} (got ${String(value)})`);
  }
}

export function checkLimits(where: string, limits: Partial<VmLimits> | undefined): void {
  for (const [k, v] of Object.entries(limits ?? {})) {
    const json = LIMIT_JSON_NAMES[k as keyof VmLimits];
    if (json === undefined) throw new HostlinkError('usage', `${where}.${k} is not a known limit`);
    const problem = limitProblem(k as keyof VmLimits, v);
    if (problem !== undefined) throw new HostlinkError('usage', `${where}.${k} (${json}) ${problem} (got ${String(v)})`);
  }
}

export interface NumericHostOptions {
  poolSize?: number;
  deadlineMs?: number;
  killGraceMs?: number;
  commitGroupMs?: number;
  gasLimit?: bigint;
  limits?: Partial<VmLimits>;
  followUps?: { maxBreadth?: number; maxDepth?: number };
}

export function checkHostOptions(o: NumericHostOptions): void {
  if (o.poolSize !== undefined) checkInteger('poolSize', o.poolSize, 1, MAX_POOL_SIZE);
  if (o.deadlineMs !== undefined) checkInteger('deadlineMs', o.deadlineMs, 1, MAX_DEADLINE_MS);
  if (o.killGraceMs !== undefined) checkInteger('killGraceMs', o.killGraceMs, 0, MAX_DEADLINE_MS);
  if (o.commitGroupMs !== undefined) checkInteger('commitGroupMs', o.commitGroupMs, 0, MAX_COMMIT_GROUP_MS);
  if (o.gasLimit !== undefined) checkGas('gasLimit', o.gasLimit);
  checkLimits('limits', o.limits);
  if (o.followUps?.maxBreadth !== undefined) checkInteger('followUps.maxBreadth', o.followUps.maxBreadth, 0, MAX_FOLLOW_UPS);
  if (o.followUps?.maxDepth !== undefined) checkInteger('followUps.maxDepth', o.followUps.maxDepth, 0, MAX_FOLLOW_UPS);
}

export function checkCallOptions(o: { input?: Uint8Array; deadlineMs?: number; gasLimit?: bigint; limits?: Partial<VmLimits>; acceptedExecutionHash?: Uint8Array }): void {
  if (o.acceptedExecutionHash !== undefined && (!(o.acceptedExecutionHash instanceof Uint8Array) || o.acceptedExecutionHash.length !== 32)) {
    throw new HostlinkError('usage', 'acceptedExecutionHash must be 32 bytes: the executionHash of the outcome consensus accepted');
  }
  if (o.input !== undefined && o.input.length > MAX_INPUT_BYTES) {
    throw new HostlinkError('usage', `input of ${o.input.length} bytes exceeds max_input_bytes (${MAX_INPUT_BYTES}): pass large data as a blob`);
  }
  if (o.deadlineMs !== undefined) checkInteger('deadlineMs', o.deadlineMs, 1, MAX_DEADLINE_MS);
  if (o.gasLimit !== undefined) checkGas('gasLimit', o.gasLimit);
  checkLimits('limits', o.limits);
}
