/**
 * upgrade URL HASH: download into a fresh file of the agent's own staging directory (see staging.ts), check the
 * lowercase hex SHA-256 of exactly the bytes written, run the install command with `{file}` = that file, then
 * schedule the reboot command to run after the reply has been written, so the guest hears "done" first.
 * A verified image this process downloaded is reused by a retry with the same hash (a failed install, say);
 * anything else found in the directory is deleted first, never trusted.
 */
import { lstat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Payload } from '../wire.js';
import type { HandlerContext, VerifiedImage } from './context.js';
import { checkDownloadUrl, download } from './download.js';
import { AGENT_STOPPING, describeCommand, fillPlaceholders, runCommand } from './run.js';
import { clearStagingDir, createStagingFile, prepareStagingDir } from './staging.js';
import { checkOrigin, urlPolicy } from './url-policy.js';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * The image this process verified, if it is still the very file it wrote (same inode, size, read-only) in the
 * staging directory as it resolves now.
 */
async function stillOurs(v: VerifiedImage | undefined, hash: string, dir: string): Promise<VerifiedImage | undefined> {
  if (v === undefined || v.sha256 !== hash || dirname(v.path) !== dir) return undefined;
  const st = await lstat(v.path).catch(() => undefined);
  if (st === undefined || !st.isFile() || st.ino !== v.ino || st.dev !== v.dev || st.size !== v.size || (st.mode & 0o777) !== 0o400) return undefined;
  return v;
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
  // The origin rule first: a URL that is not allowed touches neither the disk nor the network.
  checkOrigin(new URL(c.url), urlPolicy(h.allowedUrls, h.allowedNetworks), 'the upgrade URL');
  if (ctx.state.rebootPending) throw rebootPendingError('another upgrade');
  if (ctx.state.upgradeRunning) throw new Error('an upgrade is already running on this host; try again when it has finished');
  // Its reboot would cut the guest upgrade VM's rewrite of the guest's disks short.
  if (ctx.state.guestUpgradeVms > 0) {
    throw new Error("an upgrade is refused while 'start-upgrade-guest-vm' is running on this host; try again when it has finished");
  }
  ctx.state.upgradeRunning = true;
  try {
    // Shutdown aborts ctx.signal too, which stops the download or the installer; once the agent is stopping
    // nothing more is installed and no reboot is scheduled, and the guest is told so.
    const notInstalled = `${AGENT_STOPPING}: nothing was installed and the host will not reboot; ${RETRY}`;
    const image = await stage(c, ctx).catch((e: unknown) => {
      throw ctx.closing.aborted ? new Error(notInstalled) : e;
    });
    if (ctx.closing.aborted) throw new Error(notInstalled); // the download may have finished just before
    try {
      await ctx.run(fillPlaceholders(installCommand, { file: image.path }));
    } catch (e) {
      if (ctx.closing.aborted) throw new Error(`${AGENT_STOPPING}: the install command was stopped before it finished (or never started) and the host will not reboot; ${RETRY}`);
      throw e;
    }
    if (ctx.closing.aborted) throw new Error(`${AGENT_STOPPING}: the upgrade was installed but the host will not reboot; ${RETRY}`);
    if (ctx.signal.aborted) throw new Error('the upgrade timed out after installing; not rebooting');
    // From here the reboot is promised. Its delay can outlast this request, so upgradeRunning (cleared below)
    // cannot guard it: a second upgrade would clear the staging directory and run the installer while this
    // reboot lands. Never cleared: the host is expected to reboot, and a failed reboot needs the operator.
    ctx.state.rebootPending = true;
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

const RETRY = "retry the upgrade when the host's agent is running again";

/** The verified image to install: this process's earlier one for the same hash, else a fresh download. */
async function stage(c: { url: string; targetHash: string }, ctx: HandlerContext): Promise<VerifiedImage> {
  const dir = await prepareStagingDir(ctx.config.handlers.upgrade.stagingDir);
  let image = await stillOurs(ctx.state.verified, c.targetHash, dir);
  const removed = await clearStagingDir(dir, image?.path);
  if (removed.length > 0) ctx.log(`upgrade: deleted ${removed.length} file(s) the agent did not verify in this run from ${dir}`);
  if (image !== undefined) {
    ctx.log(`upgrade: reusing ${image.path}, verified earlier by this agent`);
  } else {
    ctx.state.verified = undefined;
    image = await fetchVerified(c, dir, ctx);
    ctx.state.verified = image;
  }
  // Only root and the agent's user can change the directory (prepareStagingDir): this catches a mistake of
  // theirs (a cleanup job, say), not another user, and costs one lstat.
  if ((await stillOurs(image, c.targetHash, dir)) === undefined) {
    ctx.state.verified = undefined;
    throw new Error(`the verified upgrade image in ${dir} was changed or removed before the install; nothing was installed: retry the upgrade`);
  }
  return image;
}

/** The refusal for work that must not overlap the reboot an installed upgrade is waiting for. */
export function rebootPendingError(what: string): Error {
  return new Error(
    `the host has installed an upgrade and is about to reboot: ${what} is refused until it has rebooted; retry after the reboot (if the host does not reboot, its operator must reboot it or restart the agent)`,
  );
}

/** Downloads into a fresh file, hashing what is written; a file that fails the check is deleted. */
async function fetchVerified(c: { url: string; targetHash: string }, dir: string, ctx: HandlerContext): Promise<VerifiedImage> {
  const h = ctx.config.handlers.upgrade;
  const { path, handle } = await createStagingFile(dir);
  let ok = false;
  try {
    const got = await download(c.url, handle, {
      policy: urlPolicy(h.allowedUrls, h.allowedNetworks),
      maxBytes: h.maxBytes,
      chunkTimeoutMs: h.chunkTimeoutMs,
      maxRedirects: h.maxRedirects,
      signal: ctx.signal,
      log: ctx.log,
    });
    if (got.sha256 !== c.targetHash) {
      ctx.log(`upgrade: ${c.url} has SHA-256 ${got.sha256}, not ${c.targetHash}`);
      // The computed hash is not sent: it would tell the guest about a body it may not be able to fetch itself.
      throw new Error(`file failed hash validation: expected_hash ${c.targetHash}`);
    }
    await handle.sync();
    // Read-only from now on: a later reuse checks that this is still the file as verified.
    await handle.chmod(0o400);
    const st = await handle.stat();
    if (st.size !== got.bytes) throw new Error('the staged upgrade image changed while it was written; nothing was installed');
    ctx.log(`upgrade: downloaded and verified ${got.bytes} bytes from ${c.url}`);
    ok = true;
    return { path, sha256: got.sha256, ino: st.ino, dev: st.dev, size: st.size };
  } finally {
    await handle.close().catch(() => undefined);
    if (!ok) await clearStagingDir(dir).catch(() => undefined);
  }
}
