/**
 * notify: write "\nMESSAGE\n" to each configured console min(count, maxCount) times, intervalMs apart, in the
 * background; the reply goes out at once. Consoles are opened before replying so a missing one is reported.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Payload } from '../wire.js';
import type { HandlerContext } from './context.js';

export async function notify(c: { count: number; message: string }, ctx: HandlerContext): Promise<Payload> {
  const h = ctx.config.handlers.notify;
  const times = Math.min(c.count, h.maxCount);
  const handles: FileHandle[] = [];
  try {
    for (const path of h.consoles) handles.push(await open(path, 'a'));
  } catch (e) {
    await Promise.all(handles.map((f) => f.close()));
    throw new Error(`cannot open console: ${(e as Error).message}`);
  }
  const text = `\n${c.message}\n`;
  const writeAll = async (): Promise<void> => {
    try {
      for (let i = 0; i < times && !ctx.closing.aborted; i++) {
        if (i > 0) await sleep(h.intervalMs, undefined, { signal: ctx.closing }).catch(() => undefined);
        if (ctx.closing.aborted) break;
        await Promise.all(handles.map((f) => f.write(text)));
      }
    } catch (e) {
      ctx.log(`notify: writing to the consoles failed: ${(e as Error).message}`);
    } finally {
      await Promise.all(handles.map((f) => f.close().catch(() => undefined)));
    }
  };
  ctx.track(writeAll());
  return { kind: 'NoPayload' };
}
