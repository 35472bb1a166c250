// A throwaway self-signed P-256 certificate for 127.0.0.1, made by the `openssl` command (node:crypto
// cannot issue X.509 certificates): for a TLS server in a test or a benchmark. Its folder is gone
// when this returns; the key and certificate come back as PEM text.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SelfSignedCertificate {
  readonly key: string;
  readonly cert: string;
}

/**
 * Makes the certificate, valid for a day, its subject `commonName` and its one subject
 * alternative name IP 127.0.0.1; throws naming what is missing when `openssl` is not on PATH.
 */
export function selfSignedCertificate(commonName: string): SelfSignedCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-tls-'));
  try {
    const keyFile = join(dir, 'key.pem');
    const certFile = join(dir, 'cert.pem');
    try {
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-keyout',
          keyFile,
          '-out',
          certFile,
          '-days',
          '1',
          '-subj',
          `/CN=${commonName}`,
          '-addext',
          'subjectAltName=IP:127.0.0.1',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
    } catch (error) {
      const missing = error instanceof Error && 'code' in error && error.code === 'ENOENT';
      throw new Error(
        missing
          ? 'a self-signed certificate needs the `openssl` command, and it is not on PATH: install OpenSSL'
          : `openssl could not make a self-signed certificate: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    return { key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
