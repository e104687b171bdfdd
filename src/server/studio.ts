/**
 * The studio's files (studio/ at the repository root: one HTML, one script, one stylesheet), read once and
 * served with a Content-Security-Policy that allows nothing but this origin: the page works offline and loads
 * no third-party code.
 */
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { HttpError } from './http.js';

const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
const FILES = ['index.html', 'studio.js', 'studio.css'] as const;
const CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

export class Studio {
  private readonly files = new Map<string, Buffer>();

  constructor(dir: string) {
    for (const f of FILES) {
      try {
        this.files.set(f, readFileSync(join(dir, f)));
      } catch {
        // served as 404 with a hint below
      }
    }
  }

  async serve(res: ServerResponse, file: string): Promise<undefined> {
    const body = this.files.get(file);
    if (body === undefined) throw new HttpError(404, `studio file ${file} is missing from this installation (studio/ in the repository)`);
    res.writeHead(200, {
      'content-type': TYPES[file.split('.').pop()!]!,
      'content-length': body.length,
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      'cache-control': 'no-cache',
    });
    res.end(body);
    return undefined;
  }
}
