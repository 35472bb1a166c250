import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { SecureArena, randomBytes } from '../crypto/index.js';
import { InMemorySealedKeyRepository } from './in-memory-sealed-key-repository.js';
import { kekMatchesVerifier, sealKekVerifier } from './kek-verifier.js';
import { openKek, type OpenKekOptions } from './open-kek.js';
import { SoftwareVault } from './software-vault.js';
import { KekSource, SigningKeyType } from './types.js';

const arena = new SecureArena();
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A vault's store and files: `open` opens its KEK with a passphrase (or the key file). */
function vaultHome() {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-kek-'));
  dirs.push(dir);
  const repository = new InMemorySealedKeyRepository();
  const keyFile = join(dir, 'vault.key');
  const saltFile = join(dir, 'vault.salt');
  const open = (passphrase?: string, extra: Partial<OpenKekOptions> = {}) =>
    openKek({ repository, keyFile, saltFile, passphrase, arena, ...extra });
  /** Seals one key under the KEK `passphrase` opens, as an identity would. */
  const sealOne = async (passphrase?: string) => {
    const kek = await open(passphrase);
    await new SoftwareVault({ repository, kek, arena }).generateSigningKey(SigningKeyType.ed25519);
  };
  return { repository, keyFile, saltFile, open, sealOne };
}

describe('openKek', () => {
  it('records the source and a verifier on first open; the same KEK opens again', async () => {
    for (const [passphrase, source, file] of [
      ['right', 'passphrase', 'saltFile'],
      [undefined, 'key-file', 'keyFile'],
    ] as const) {
      const home = vaultHome();
      const kek = await home.open(passphrase);
      const recorded = await home.repository.getKekVerifier();
      expect(recorded?.source).toBe(source);
      expect(recorded !== undefined && kekMatchesVerifier(kek, recorded)).toBe(true);
      // Exactly the one file of its source.
      expect([existsSync(home.keyFile), existsSync(home.saltFile)]).toEqual([
        file === 'keyFile',
        file === 'saltFile',
      ]);
      expect((await home.open(passphrase)).expose()).toEqual(kek.expose());
    }
  });

  it('refuses a wrong passphrase, and one for a key-file vault, naming how it is given', async () => {
    const home = vaultHome();
    await home.sealOne('right');
    await expect(home.open('wrong')).rejects.toMatchObject({
      code: 'ERR_VAULT_PASSPHRASE_WRONG',
      kind: 'unauthorized',
    });
    await expect(home.open(undefined, { passphraseName: 'MY_VAR' })).rejects.toMatchObject({
      code: 'ERR_VAULT_PASSPHRASE_REQUIRED',
      kind: 'unauthorized',
      message: expect.stringContaining('`MY_VAR`') as unknown,
    });
    expect(existsSync(home.keyFile)).toBe(false);

    const keyed = vaultHome();
    await keyed.sealOne();
    await expect(keyed.open('x')).rejects.toMatchObject({
      code: 'ERR_VAULT_PASSPHRASE_UNEXPECTED',
      kind: 'invalid',
    });
    expect(existsSync(keyed.saltFile)).toBe(false);
  });

  it('refuses an empty passphrase before touching anything', async () => {
    const home = vaultHome();
    await expect(home.open('')).rejects.toMatchObject({ code: 'ERR_VAULT_PASSPHRASE_EMPTY' });
    expect(await home.repository.getKekVerifier()).toBeUndefined();
    expect(existsSync(home.keyFile) || existsSync(home.saltFile)).toBe(false);
  });

  it('never re-creates the key file of an established vault, and refuses a replaced one', async () => {
    const home = vaultHome();
    await home.sealOne();
    rmSync(home.keyFile);
    await expect(home.open()).rejects.toMatchObject({
      code: 'ERR_VAULT_KEY_FILE_MISSING',
      kind: 'not_found',
    });
    expect(existsSync(home.keyFile)).toBe(false);
    writeFileSync(home.keyFile, randomBytes(32), { mode: 0o600 });
    await expect(home.open()).rejects.toMatchObject({
      code: 'ERR_VAULT_KEY_FILE_WRONG',
      kind: 'unauthorized',
    });
  });

  it('checks a vault from before verifiers against a sealed key, then records its verifier', async () => {
    const home = vaultHome();
    await home.sealOne('right');
    // As an earlier Mandate left it: sealed keys and a salt file, no verifier.
    const legacy = new InMemorySealedKeyRepository();
    const sample = await home.repository.anyKey();
    if (sample === undefined) throw new Error('no key sealed');
    await legacy.putKey(sample);
    const open = (passphrase?: string) =>
      openKek({ repository: legacy, keyFile: home.keyFile, saltFile: home.saltFile, passphrase });
    await expect(open('wrong')).rejects.toMatchObject({ code: 'ERR_VAULT_PASSPHRASE_WRONG' });
    // A salt file and no key file: a passphrase vault, whatever the caller forgot.
    await expect(open()).rejects.toMatchObject({ code: 'ERR_VAULT_PASSPHRASE_REQUIRED' });
    expect(existsSync(home.keyFile)).toBe(false);
    expect(await legacy.getKekVerifier()).toBeUndefined();
    const kek = await open('right');
    const recorded = await legacy.getKekVerifier();
    expect(recorded?.source).toBe('passphrase');
    expect(recorded !== undefined && kekMatchesVerifier(kek, recorded)).toBe(true);
  });

  it('a verifier accepts only its own KEK and source (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.constantFrom(KekSource.keyFile, KekSource.passphrase),
        (a, b, source) => {
          const kek = arena.allocateFrom(a);
          const other = arena.allocateFrom(b);
          try {
            const record = sealKekVerifier(kek, source);
            const flipped = source === KekSource.keyFile ? KekSource.passphrase : KekSource.keyFile;
            expect(kekMatchesVerifier(kek, record)).toBe(true);
            expect(kekMatchesVerifier(kek, { ...record, source: flipped })).toBe(false);
            expect(kekMatchesVerifier(other, record)).toBe(a.every((x, i) => x === b[i]));
          } finally {
            kek.destroy();
            other.destroy();
          }
        },
      ),
      { numRuns: 50 },
    );
  });
});
