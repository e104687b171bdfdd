/**
 * upgrade URL HASH: download to the staging file (reusing one already staged with the right hash, deleting one
 * with a wrong hash), verify the lowercase hex SHA-256, run the install command with `{file}` = the staged file,
 * then schedule the reboot command to run after the reply has been written, so the guest hears "done" first.
 */
import { rename, rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Payload } from '../wire.js';
import type { HandlerContext } from './context.js';
import { checkDownloadUrl, download, sha256File } from './download.js';
import { describeCommand, fillPlaceholders, runCommand } from './run.js';

const SHA256_HEX = /^[0-9a-f]{64}$/;

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

export async function upgrade(c: { url: string; targetHash: string }, ctx: HandlerContext): Promise<Payload> {
  const h = ctx.config.handlers.upgrade;
  const { installCommand, rebootCommand } = h;
  if (installCommand === undefined || rebootCommand === undefined) {
    throw new Error('the host has upgrade enabled but not configured: set handlers.upgrade.installCommand and .rebootCommand in the agent configuration');
  }
  checkDownloadUrl(c.url);
  if (!SHA256_HEX.test(c.targetHash)) {
    throw new Error(`invalid target hash '${c.targetHash.slice(0, 80)}': expected a SHA-256 as 64 lowercase hex digits`);
  }
  if (ctx.state.upgradeRunning) throw new Error('an upgrade is already running on this host; try again when it has finished');
  ctx.state.upgradeRunning = true;
  try {
    const staged = h.stagingFile;
    let reuse = false;
    if (await exists(staged)) {
      const have = await sha256File(staged);
      reuse = have === c.targetHash;
      if (!reuse) await rm(staged, { force: true });
      ctx.log(reuse ? `upgrade: reusing ${staged} (hash matches)` : `upgrade: deleted ${staged} (hash ${have} does not match)`);
    }
    if (!reuse) {
      // Download beside the staging file and rename only a verified image into place.
      const partial = `${staged}.partial`;
      await rm(partial, { force: true });
      let got;
      try {
        got = await download(c.url, partial, { maxBytes: h.maxBytes, chunkTimeoutMs: h.chunkTimeoutMs, signal: ctx.signal });
      } catch (e) {
        await rm(partial, { force: true });
        throw e;
      }
      if (got.sha256 !== c.targetHash) {
        await rm(partial, { force: true });
        throw new Error(`file failed hash validation: computed_hash ${got.sha256}, expected_hash ${c.targetHash}`);
      }
      await rename(partial, staged);
      ctx.log(`upgrade: downloaded ${got.bytes} bytes from ${c.url}`);
    }
    await runCommand(fillPlaceholders(installCommand, { file: staged }), ctx.signal);
    if (ctx.signal.aborted) throw new Error('the upgrade timed out after installing; not rebooting');
    ctx.afterReply(() => {
      const reboot = async (): Promise<void> => {
        // An agent shutting down cuts the delay short but still reboots: the upgrade is installed and promised.
        if (h.rebootDelayMs > 0) await sleep(h.rebootDelayMs, undefined, { signal: ctx.closing }).catch(() => undefined);
        ctx.log(`upgrade: running ${describeCommand(rebootCommand)}`);
        await runCommand(rebootCommand).catch((e: Error) => ctx.log(`upgrade: reboot failed: ${e.message}`));
      };
      ctx.track(reboot());
    });
    return { kind: 'NoPayload' };
  } finally {
    ctx.state.upgradeRunning = false;
  }
}
