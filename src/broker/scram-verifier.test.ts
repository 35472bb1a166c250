import { describe, expect, it } from 'vitest';
import { hmacSha256, sha256 } from '../crypto/index.js';
import { scramSha256Verifier } from './scram-verifier.js';

// RFC 7677 §3: the SCRAM-SHA-256 exchange for user `user`, password `pencil`. The verifier holds
// StoredKey and ServerKey, which is all a server needs: check the client's proof against
// StoredKey and reproduce the server's signature `v=` with ServerKey.
const b64 = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64'));
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const clientNonce = 'rOprNGfwEbeRWgbNEkqO';
const nonce = `${clientNonce}%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0`;
const salt = 'W22ZaJ0SNY7soEsUEjb6gQ==';
const authMessage = `n=user,r=${clientNonce},r=${nonce},s=${salt},i=4096,c=biws,r=${nonce}`;
const clientProof = 'dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=';
const serverSignature = '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=';

describe('scramSha256Verifier', () => {
  it('verifies the RFC 7677 exchange', async () => {
    const verifier = await scramSha256Verifier('pencil', b64(salt), 4096);
    const match = /^SCRAM-SHA-256\$4096:([^$]+)\$([^:]+):(.+)$/.exec(verifier);
    expect(match).not.toBeNull();
    const [, saltText, storedKeyText, serverKeyText] = match!;
    expect(saltText).toBe(salt);
    const storedKey = b64(storedKeyText!);
    // ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must be StoredKey.
    const signature = hmacSha256(storedKey, utf8(authMessage));
    const clientKey = b64(clientProof).map((byte, i) => byte ^ signature[i]!);
    expect(Buffer.from(sha256(clientKey)).toString('base64')).toBe(storedKeyText);
    const server = hmacSha256(b64(serverKeyText!), utf8(authMessage));
    expect(Buffer.from(server).toString('base64')).toBe(serverSignature);
  });

  it('gives a different verifier for another password or salt', async () => {
    const a = await scramSha256Verifier('pencil', b64(salt));
    expect(await scramSha256Verifier('pencil!', b64(salt))).not.toBe(a);
    expect(await scramSha256Verifier('pencil', new Uint8Array(16))).not.toBe(a);
  });
});
