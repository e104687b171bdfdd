/**
 * TLS material for remote workers: the node's Runtime endpoint, the worker's slot listener and the
 * connections between them all use certificates from one operator CA (docs/deploy.md). Mutual TLS is the
 * default; a shared token (TLS plus `authorization: Bearer`) is the alternative for workers without a client
 * certificate (src/token.ts).
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { HostlinkError } from '../errors.js';
import { MAX_SETTINGS_FILE_BYTES, readBounded, SETTINGS_FILE_LIMIT } from '../read-bounded.js';

/** Paths of PEM files, as given on the command line or in HostOptions. */
export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

/** The same material, read. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

export function readTlsFiles(files: TlsFiles): TlsMaterial {
  const read = (what: keyof TlsFiles): Buffer => {
    try {
      return Buffer.from(readBounded(files[what], MAX_SETTINGS_FILE_BYTES, `the TLS ${what} file`, SETTINGS_FILE_LIMIT));
    } catch (e) {
      throw new HostlinkError('usage', (e as Error).message);
    }
  };
  const material = { cert: read('cert'), key: read('key'), ca: read('ca') };
  checkTlsMaterial(files, material);
  return material;
}

/**
 * Refuses material TLS would refuse later, naming the file: OpenSSL's own errors ("PEM routines::no start
 * line") name neither the file nor the fix, arrive only when a connection is made or a listener started, and a
 * CA it cannot parse is dropped without a word (an endpoint no worker could ever register with).
 */
function checkTlsMaterial(files: TlsFiles, m: TlsMaterial): void {
  const openssl = (e: unknown): string => String((e as Error).message).replace(/^error:[0-9A-F]+:/, '');
  const certificate = (what: 'cert' | 'ca'): X509Certificate => {
    try {
      return new X509Certificate(m[what]);
    } catch (e) {
      throw new HostlinkError('usage', `the TLS ${what} file ${files[what]} is not a PEM certificate (${openssl(e)}): give one that begins -----BEGIN CERTIFICATE-----`);
    }
  };
  const cert = certificate('cert');
  certificate('ca');
  let key: KeyObject;
  try {
    key = createPrivateKey(m.key);
  } catch (e) {
    throw new HostlinkError('usage', `the TLS key file ${files.key} is not a PEM private key (${openssl(e)}): give the key of ${files.cert}, unencrypted`);
  }
  if (!cert.checkPrivateKey(key)) throw new HostlinkError('usage', `the TLS key file ${files.key} is not the key of the certificate ${files.cert}: give the pair made together`);
}
