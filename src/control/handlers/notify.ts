/**
 * notify: write "\nMESSAGE\n" to each configured console min(count, maxCount) times, intervalMs apart, in the
 * background; the reply goes out at once. The message is stripped of control characters except newline first
 * (see text.ts). What a guest can make the agent hold is bounded: at most `maxPending` notifications are being
 * written at once (one more is refused with an error reply until one finishes), and a console is opened only
 * for each write, so no descriptor is held between writes. Consoles are opened once before replying so a
 * missing one is reported to the guest.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { consoleText } from '../../terminal-text.js';
import type { Payload } from '../wire.js';
import type { HandlerContext } from './context.js';

// O_NOCTTY: a tty opened by the agent must not become its controlling terminal. O_NONBLOCK: a console that
// stopped reading (a serial line paused with XOFF) fails the write instead of blocking a thread forever. No
// O_CREAT: a console that is missing is an error, never a regular file created in its place (under /dev).
const CONSOLE_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_NOCTTY | constants.O_NONBLOCK;

async function writeConsole(path: string, text: string): Promise<void> {
  const f = await open(path, CONSOLE_FLAGS);
  try {
    await f.write(text);
  } finally {
    await f.close();
  }
}

export async function notify(c: { count: number; message: string }, ctx: HandlerContext): Promise<Payload> {
  const h = ctx.config.handlers.notify;
  if (ctx.state.notifiesPending >= h.maxPending) {
    throw new Error(`the host is still writing ${h.maxPending} notifications (handlers.notify.maxPending); retry when they are done`);
  }
  const times = Math.min(c.count, h.maxCount);
  const text = `\n${consoleText(c.message)}\n`;
  ctx.state.notifiesPending++;
  let handedOff = false;
  try {
    for (const [i, path] of h.consoles.entries()) {
      const f = await open(path, CONSOLE_FLAGS).catch((e: NodeJS.ErrnoException) => {
        // The path and the system's text go to the operator's log; the guest learns which entry and why.
        const missing = e.code === 'ENOENT';
        ctx.log(`notify: cannot open console ${path}: ${e.message}${missing ? '; the agent does not create consoles: fix handlers.notify.consoles' : ''}`);
        const why = missing ? 'it does not exist (the agent never creates one)' : `the system refused (${e.code ?? 'error'})`;
        throw new Error(`cannot open console handlers.notify.consoles[${i}]: ${why}; nothing was written, the host's agent log has the details`);
      });
      await f.close();
    }
    const writeAll = async (): Promise<void> => {
      try {
        for (let i = 0; i < times && !ctx.closing.aborted; i++) {
          if (i > 0) await sleep(h.intervalMs, undefined, { signal: ctx.closing }).catch(() => undefined);
          if (ctx.closing.aborted) break;
          const results = await Promise.allSettled(h.consoles.map((path) => writeConsole(path, text)));
          for (const r of results) if (r.status === 'rejected') ctx.log(`notify: writing to a console failed: ${(r.reason as Error).message}`);
        }
      } finally {
        ctx.state.notifiesPending--;
      }
    };
    ctx.track(writeAll());
    handedOff = true;
  } finally {
    if (!handedOff) ctx.state.notifiesPending--;
  }
  return { kind: 'NoPayload' };
}
