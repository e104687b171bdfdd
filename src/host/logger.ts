/**
 * The logger a Host (and `hostlink serve`) writes to: four levels, a message and structured fields. The default
 * logs nothing, so embedding code decides where lines go; `jsonLogger` writes one JSON object per line.
 */
import { inertJson } from '../terminal-text.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface HostLogger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

const LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export const silentLogger: HostLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** JSON lines (`{"time","level","msg",...fields}`) to `write`, dropping levels below `min`. */
export function jsonLogger(min: LogLevel = 'info', write: (line: string) => void = (l) => process.stderr.write(l)): HostLogger {
  const floor = LEVELS.indexOf(min);
  const at =
    (level: LogLevel) =>
    (msg: string, fields?: Record<string, unknown>): void => {
      if (LEVELS.indexOf(level) < floor) return;
      // Fields may quote a VM, a worker or a peer: nothing in the line may act on the terminal it reaches.
      write(inertJson(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) + '\n');
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

export function isLogLevel(s: string): s is LogLevel {
  return (LEVELS as readonly string[]).includes(s);
}
