/**
 * Throwaway TLS material for the remote-worker tests and benchmark, generated with the `openssl` binary into a
 * temporary directory: a CA, a certificate for the node (SAN: the given IPs and the names `hostlink-node` and
 * `localhost`), one for workers (SAN: the given IPs and the name `hostlink-worker`, not the node's names: a worker
 * accepts slot connections only from a certificate that carries the node's name, NODE_NAME), a second worker
 * certificate with its own key (another worker identity to the node), and a
 * second, unrelated CA with a client certificate, to show that a certificate from another CA is refused. Lives
 * under bench/ so that both the tests and the benchmark use it (bench code must not import test code). Never for
 * production: the keys are unprotected and valid for two days.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TlsFiles } from '../src/worker/tls.js';

export function opensslMissing(): string | undefined {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : 'the openssl binary is not installed (needed to make test certificates)';
}

/** A name only the node's certificate carries (a worker's `--node-name`; also `localhost`, as a `--runtime` host). */
export const NODE_NAME = 'hostlink-node';

export interface TestCerts {
  node: TlsFiles;
  worker: TlsFiles;
  /** Another worker's certificate from the same CA, same names, its own key: a different identity to the node. */
  otherWorker: TlsFiles;
  /** A client certificate and CA that the node's CA did not sign. */
  stranger: TlsFiles;
  /**
   * Workers' certificates from the node's CA that match NODE_SUBDOMAIN_NAME (which the node's carries) only as TLS
   * would: through the wildcard `*.` + NODE_DOMAIN, and through a common name with no alternative name of its kind.
   */
  wildcardWorker: TlsFiles;
  commonNameWorker: TlsFiles;
}

/** A name under a domain: the node's certificate carries it; only a wildcard worker certificate matches it too. */
export const NODE_DOMAIN = 'nodes.hostlink-test';
export const NODE_SUBDOMAIN_NAME = `node.${NODE_DOMAIN}`;

function run(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function ca(dir: string, name: string): void {
  run(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.pem`, '-days', '2', '-subj', `/CN=${name}`]);
}

function leaf(dir: string, caName: string, name: string, san: string, commonName = name): void {
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  run(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${commonName}`]);
  run(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.pem`, '-CAkey', `${caName}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]);
}

export function makeCerts(dir: string, ips: readonly string[] = ['127.0.0.1']): TestCerts {
  const addresses = ips.map((ip) => `IP:${ip}`);
  const nodeSan = [`DNS:${NODE_NAME}`, 'DNS:localhost', `DNS:${NODE_SUBDOMAIN_NAME}`, ...addresses].join(',');
  const workerSan = ['DNS:hostlink-worker', ...addresses].join(',');
  ca(dir, 'ca');
  leaf(dir, 'ca', 'node', nodeSan);
  leaf(dir, 'ca', 'worker', workerSan);
  leaf(dir, 'ca', 'other-worker', workerSan);
  leaf(dir, 'ca', 'wildcard-worker', `DNS:*.${NODE_DOMAIN},${addresses.join(',')}`);
  leaf(dir, 'ca', 'cn-worker', 'email:worker@hostlink-test', NODE_SUBDOMAIN_NAME);
  ca(dir, 'other-ca');
  leaf(dir, 'other-ca', 'stranger', workerSan);
  const files = (name: string, caName: string): TlsFiles => ({ cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`), ca: join(dir, `${caName}.pem`) });
  return {
    node: files('node', 'ca'),
    worker: files('worker', 'ca'),
    otherWorker: files('other-worker', 'ca'),
    stranger: files('stranger', 'other-ca'),
    wildcardWorker: files('wildcard-worker', 'ca'),
    commonNameWorker: files('cn-worker', 'ca'),
  };
}
