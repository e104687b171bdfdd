/**
 * Types that tie host-function implementations to the generated definition table: a family module must
 * implement exactly its family's functions, with the table's parameter and result types
 * (i64 -> bigint, i32 -> number).
 */
import type { Execution } from '../execution.js';
import type { HOST_FUNCTIONS, HostFamily, HostFunctionName } from '../host-functions.generated.js';

type Table = typeof HOST_FUNCTIONS;
type ParamType<T> = T extends 'i32' ? number : bigint;
type ParamTypes<P extends readonly unknown[]> = { -readonly [K in keyof P]: ParamType<P[K]> };
type ResultType<R> = R extends 'i32' ? number : R extends 'i64' ? bigint : void;

export type HostFnOf<N extends HostFunctionName> = (
  ex: Execution,
  ...args: ParamTypes<Table[N]['params']>
) => ResultType<Table[N]['result']>;

export type NamesOf<F extends HostFamily> = {
  [N in HostFunctionName]: Table[N]['family'] extends F ? N : never;
}[HostFunctionName];

/** Everything a family module exports: one implementation per function of the family. */
export type FamilyImpl<F extends HostFamily> = { [N in NamesOf<F>]: HostFnOf<N> };
