import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { invalid } from '../../core/internal.js';
import { parseJsonNoDuplicateKeys } from '../../encoding/index.js';
import { SigningKeyType, type SigningKeyHandle } from '../../vault/index.js';
import { publicJwkOf } from '../../broker/index.js';
import type { CliContext } from '../context.js';
import type { Home } from '../home.js';

/**
 * The home's broker token key: the vault key id (never the key, which stays sealed in the vault)
 * in `HOME/broker-jwt-key.json`, `{"keyId":"…","keyType":"ed25519"|"p256"}`, written once (the
 * first writer wins) when the key is created.
 */
export const BROKER_JWT_KEY_FILE = 'broker-jwt-key.json';

function readKeyFile(path: string): { keyId: string; keyType: SigningKeyType } | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const value = parseJsonNoDuplicateKeys(text, 'ERR_JWT_KEY_FILE_INVALID', `\`${path}\``, 2);
  const { keyId, keyType } = (value ?? {}) as Record<string, unknown>;
  if (
    typeof keyId !== 'string' ||
    keyId.length === 0 ||
    (keyType !== SigningKeyType.ed25519 && keyType !== SigningKeyType.p256)
  )
    throw invalid(
      'ERR_JWT_KEY_FILE_INVALID',
      `\`${path}\` must hold {"keyId": "…", "keyType": "ed25519" or "p256"}`,
    );
  return { keyId, keyType };
}

/**
 * The home's broker token signing key, created in the home's vault on first use (`keyType`,
 * default Ed25519). An existing key of another type than `keyType` asks is refused
 * (`ERR_ARGUMENT_INVALID`): the key is not replaced silently.
 */
export async function homeBrokerJwtKey(
  home: Home,
  keyType?: SigningKeyType,
): Promise<SigningKeyHandle> {
  const path = join(home.dir, BROKER_JWT_KEY_FILE);
  let known = readKeyFile(path);
  if (known === undefined) {
    const created = await home.vault.generateSigningKey(keyType ?? SigningKeyType.ed25519);
    try {
      writeFileSync(
        path,
        `${JSON.stringify({ keyId: created.keyId, keyType: created.keyType })}\n`,
        { flag: 'wx', mode: 0o644 },
      );
      return created;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      // Another process created the key first: use its key, drop ours.
      await home.vault.deleteSigningKey(created.keyId);
      known = readKeyFile(path)!;
    }
  }
  if (keyType !== undefined && known.keyType !== keyType)
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `this home's broker key is ${known.keyType}, not ${keyType} (see \`${BROKER_JWT_KEY_FILE}\`)`,
    );
  const key = await home.vault.getSigningKey(known.keyId);
  if (key.keyType !== known.keyType)
    throw invalid('ERR_JWT_KEY_FILE_INVALID', `\`${path}\` names a key of another type`);
  return key;
}

/** `mandate broker jwks`: under the `broker` command (created here if no other module has). */
export function registerBrokerJwksCommand(program: Command, context: () => CliContext): void {
  const broker =
    program.commands.find((c) => c.name() === 'broker') ??
    program.command('broker').description('the broker: leased secrets (gate 3)');
  broker
    .command('jwks')
    .option(
      '--key-type <type>',
      'ed25519 or p256: the type of the key when this creates it (default ed25519)',
    )
    .description(
      "print the JWKS of this home's broker token key (relying parties verify lease JWTs with it); creates the key on first use",
    )
    .action(async (opts: { keyType?: string }) => {
      const ctx = context();
      const keyType = opts.keyType;
      if (
        keyType !== undefined &&
        keyType !== SigningKeyType.ed25519 &&
        keyType !== SigningKeyType.p256
      )
        throw invalid('ERR_ARGUMENT_INVALID', '`--key-type` must be ed25519 or p256');
      const home = await ctx.openHome();
      try {
        const jwks = { keys: [publicJwkOf(await homeBrokerJwtKey(home, keyType))] };
        ctx.out.result(jwks, () => JSON.stringify(jwks, null, 2));
      } finally {
        home.close();
      }
    });
}
