/**
 * A minimal Chrome DevTools Protocol client over --remote-debugging-pipe (fd 3: to the browser, fd 4: from it;
 * NUL-terminated JSON), so the studio test drives Debian's chromium with no npm dependency and no WebSocket.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

/** The first chromium-like browser on PATH, or undefined. */
export function findChromium(): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(':')) {
    for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
      const p = join(dir, name);
      if (dir && existsSync(p)) return p;
    }
  }
  return undefined;
}

type Pending = { resolve: (v: any) => void; reject: (e: Error) => void };

export class Browser {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly waiters: { method: string; resolve: (params: any) => void }[] = [];
  private buffer = Buffer.alloc(0);
  private stderr = '';
  private exited: string | null = null;

  private constructor(readonly child: ChildProcess) {
    (child.stdio[3] as Writable).on('error', () => undefined); // EPIPE when it died: reported by the exit handler
    child.stderr!.on('data', (c: Buffer) => (this.stderr = (this.stderr + c.toString()).slice(-4000)));
    // A browser that dies (missing libraries, no display support) fails every pending command with its output.
    child.once('exit', (code, signal) => {
      this.exited = `chromium exited (${code ?? signal}): ${this.stderr.trim().split('\n').slice(-3).join(' | ')}`;
      for (const p of this.pending.values()) p.reject(new Error(this.exited));
      this.pending.clear();
    });
    const out = child.stdio[4] as Readable;
    out.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      let end;
      while ((end = this.buffer.indexOf(0)) >= 0) {
        const msg = JSON.parse(this.buffer.subarray(0, end).toString('utf8'));
        this.buffer = this.buffer.subarray(end + 1);
        if (msg.id !== undefined) {
          const p = this.pending.get(msg.id);
          this.pending.delete(msg.id);
          if (msg.error) p?.reject(new Error(`${msg.error.message} (${msg.error.code})`));
          else p?.resolve(msg.result);
        } else {
          const i = this.waiters.findIndex((w) => w.method === msg.method);
          if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(msg.params);
        }
      }
    });
  }

  static launch(binary: string, userDataDir: string): Browser {
    const args = ['--headless=new', '--remote-debugging-pipe', '--disable-gpu', '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--disable-dev-shm-usage', '--window-size=1280,900', `--user-data-dir=${userDataDir}`];
    // Chromium refuses to run as root with its own sandbox (CI runs as root).
    if (process.getuid?.() === 0) args.push('--no-sandbox');
    const child = spawn(binary, [...args, 'about:blank'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    return new Browser(child);
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<any> {
    const id = this.nextId++;
    const pipe = this.child.stdio[3] as Writable;
    if (this.exited !== null) return Promise.reject(new Error(this.exited));
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      pipe.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0');
    });
  }

  nextEvent(method: string): Promise<any> {
    return new Promise((resolve) => this.waiters.push({ method, resolve }));
  }

  /** Attaches to the first page; returns its session id. */
  async page(): Promise<string> {
    const { targetInfos } = await this.send('Target.getTargets');
    let target = targetInfos.find((t: { type: string }) => t.type === 'page');
    if (!target) target = { targetId: (await this.send('Target.createTarget', { url: 'about:blank' })).targetId };
    const { sessionId } = await this.send('Target.attachToTarget', { targetId: target.targetId, flatten: true });
    return sessionId;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.kill('SIGKILL');
    });
  }
}
