import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeCbor, encodeCbor, toHex, type CborValue } from '../encoding/index.js';
import { sha256 } from '../crypto/index.js';
import { encodeSignature, encodeVersionedData } from '../identity/internal.js';
import type { Identifier, VerifiedIdentity } from '../identity/index.js';
import type { CredentialIssuer } from '../credentials/index.js';
import { parseCedarEntities, parseCedarRequest } from '../policy/index.js';
import { encodeBundleContent, MAX_BUNDLE_BYTES, type BundleContent } from '../policy/internal.js';
import { BUNDLE_DATA_TYPE, peekBundle, signBundle, verifyBundle } from './bundle.js';
import { ToolCatalog } from './catalog.js';
import { BUNDLE_T0, bundleWorld, TEST_POLICIES, TEST_SCHEMA } from '../../test/helpers/bundles.js';
import { codeOf } from '../../test/helpers/errors.js';

const rejects = (promise: Promise<unknown>, code: string) =>
  expect(promise).rejects.toMatchObject({ code });

const trusting = (...issuers: CredentialIssuer[]): Map<Identifier, VerifiedIdentity> =>
  new Map(issuers.map((i) => [i.identity.identifier, i.identity]));

/** Signs arbitrary content with the issuer's key, as a faulty or hostile authority could. */
async function signRaw(
  world: ReturnType<typeof bundleWorld>,
  issuer: CredentialIssuer,
  content: BundleContent,
): Promise<Uint8Array> {
  const data = encodeVersionedData(BUNDLE_DATA_TYPE, encodeBundleContent(content));
  const key = await world.vault.getSigningKey(issuer.credentialKeyId);
  const signature = await world.vault.sign(issuer.credentialKeyId, sha256(data));
  return encodeCbor([
    data,
    encodeSignature(key.keyType, signature),
    issuer.credentialKeyAttestation,
  ]);
}

describe('signBundle / verifyBundle', () => {
  it('round-trips: the fields, the hash of the signed bytes, and compiled policies that decide', async () => {
    const world = bundleWorld();
    const authority = await world.authority('authority');
    const bytes = await world.sign(authority, 3);
    const bundle = verifyBundle(bytes, {
      nowSeconds: BUNDLE_T0 + 10,
      authorities: trusting(authority),
    });
    expect(bundle.version).toBe(3);
    expect(bundle.issuer).toBe(authority.identity.identifier);
    expect(bundle.createdAt).toBe(BUNDLE_T0);
    expect(bundle.hash).toBe(toHex(sha256(bytes)));
    expect(bundle.policies).toBe(TEST_POLICIES);
    expect(bundle.schema).toBe(TEST_SCHEMA);
    expect(peekBundle(bytes)).toEqual({
      issuer: bundle.issuer,
      version: 3,
      createdAt: BUNDLE_T0,
      hash: bundle.hash,
    });
    const entities = parseCedarEntities([
      { uid: { type: 'Agent', id: 'a' }, attrs: { teams: ['support'] }, parents: [] },
      { uid: { type: 'Tool', id: 'refund' }, attrs: { risk: 1 }, parents: [] },
    ]);
    const request = (amount: number) =>
      parseCedarRequest({
        principal: { type: 'Agent', id: 'a' },
        action: { type: 'Action', id: 'callTool' },
        resource: { type: 'Tool', id: 'refund' },
        context: { amount },
      });
    expect(bundle.policySet.evaluate(request(50), entities)).toMatchObject({
      decision: 'allow',
      policies: ['policy0'],
    });
    expect(bundle.policySet.evaluate(request(500), entities)).toMatchObject({
      decision: 'deny',
      policies: ['policy1'],
    });
    expect(bundle.policySet.annotations('policy1')?.get('id')).toBe('cap');
  });

  it('refuses to sign what does not compile, naming why, and signs nothing', async () => {
    const world = bundleWorld();
    const authority = await world.authority('authority');
    await rejects(world.sign(authority, 1, 'permit(principal'), 'ERR_POLICY_SYNTAX');
    await rejects(
      world.sign(authority, 1, 'permit(principal, action, resource) when { principal.nope };'),
      'ERR_POLICY_INVALID',
    );
    await rejects(
      world.sign(
        authority,
        1,
        'permit(principal, action, resource) when { datetime("2024-10-15") < datetime("2024-10-16") };',
      ),
      'ERR_POLICY_UNSUPPORTED',
    );
    await rejects(
      signBundle(
        world.vault,
        authority,
        { policies: TEST_POLICIES, schema: 'entity', version: 1 },
        { nowSeconds: BUNDLE_T0 },
      ),
      'ERR_POLICY_SCHEMA_INVALID',
    );
    await rejects(world.sign(authority, 0), 'ERR_ARGUMENT_INVALID');
  });

  it('refuses a bundle from an untrusted issuer, a forged signature, a content issuer that is not the signer', async () => {
    const world = bundleWorld();
    const authority = await world.authority('authority');
    const other = await world.authority('other');
    const bytes = await world.sign(other, 1);
    const now = BUNDLE_T0 + 1;
    expect(
      codeOf(() => verifyBundle(bytes, { nowSeconds: now, authorities: trusting(authority) })),
    ).toBe('ERR_BUNDLE_UNTRUSTED_ISSUER');
    // Content that names `authority`, signed by `other`: an authority cannot speak for another.
    const impostor = await signRaw(world, other, {
      issuer: authority.identity.identifier,
      version: 1,
      createdAt: BUNDLE_T0,
      policies: TEST_POLICIES,
      schema: TEST_SCHEMA,
    });
    expect(
      codeOf(() =>
        verifyBundle(impostor, { nowSeconds: now, authorities: trusting(authority, other) }),
      ),
    ).toBe('ERR_BUNDLE_ISSUER_MISMATCH');
    // `other`'s signature with `authority`'s attestation.
    const good = await world.sign(authority, 1);
    const swapped = await signRaw(world, other, {
      issuer: authority.identity.identifier,
      version: 1,
      createdAt: BUNDLE_T0,
      policies: TEST_POLICIES,
      schema: TEST_SCHEMA,
    });
    const forged = encodeCbor([
      ...(decodeOuter(swapped).slice(0, 2) as Uint8Array[]),
      authority.credentialKeyAttestation,
    ]);
    expect(
      codeOf(() => verifyBundle(good, { nowSeconds: now, authorities: trusting(authority) })),
    ).toBe('accepted');
    expect(
      codeOf(() => verifyBundle(forged, { nowSeconds: now, authorities: trusting(authority) })),
    ).toBe('ERR_BUNDLE_SIGNATURE_INVALID');
  });

  it('never accepts a bundle with any byte changed', async () => {
    const world = bundleWorld();
    const authority = await world.authority('authority');
    const bytes = await world.sign(authority, 1);
    const authorities = trusting(authority);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: bytes.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (at, xor) => {
          const tampered = Uint8Array.from(bytes);
          tampered[at]! ^= xor;
          const code = codeOf(() => verifyBundle(tampered, { nowSeconds: BUNDLE_T0, authorities }));
          expect(code).not.toBe('accepted');
          expect(code).toMatch(/^ERR_/);
        },
      ),
      { numRuns: 300, seed: 10 },
    );
  });

  it('accepts only a newer version from the same issuer than the bundle in force', async () => {
    const world = bundleWorld();
    const authority = await world.authority('authority');
    const other = await world.authority('other');
    const authorities = trusting(authority, other);
    const v2 = verifyBundle(await world.sign(authority, 2), { nowSeconds: BUNDLE_T0, authorities });
    const verify = (bytes: Uint8Array) => () =>
      verifyBundle(bytes, { nowSeconds: BUNDLE_T0, authorities, known: v2 });
    expect(codeOf(verify(await world.sign(authority, 1)))).toBe('ERR_BUNDLE_NOT_NEWER');
    expect(codeOf(verify(await world.sign(authority, 2)))).toBe('ERR_BUNDLE_NOT_NEWER');
    expect(codeOf(verify(await world.sign(other, 9)))).toBe('ERR_BUNDLE_ISSUER_CHANGED');
    expect(verify(await world.sign(authority, 3))().version).toBe(3);
  });

  it('refuses a bundle from the future and, with a bound, one too old', async () => {
    const world = bundleWorld();
    const authority = await world.authority('authority');
    world.clock.advance(1000);
    const bytes = await world.sign(authority, 1);
    const authorities = trusting(authority);
    const created = BUNDLE_T0 + 1000;
    expect(codeOf(() => verifyBundle(bytes, { nowSeconds: created - 61, authorities }))).toBe(
      'ERR_BUNDLE_NOT_YET_VALID',
    );
    expect(codeOf(() => verifyBundle(bytes, { nowSeconds: created - 60, authorities }))).toBe(
      'accepted',
    );
    const aged = { authorities, maxAgeSeconds: 300 };
    expect(codeOf(() => verifyBundle(bytes, { ...aged, nowSeconds: created + 300 }))).toBe(
      'accepted',
    );
    expect(codeOf(() => verifyBundle(bytes, { ...aged, nowSeconds: created + 301 }))).toBe(
      'ERR_BUNDLE_STALE',
    );
  });

  it('compiles on verify: a signed bundle whose policies do not validate against its schema is refused', async () => {
    const world = bundleWorld();
    const authority = await world.authority('authority');
    const content = {
      issuer: authority.identity.identifier,
      version: 1,
      createdAt: BUNDLE_T0,
      schema: TEST_SCHEMA,
    };
    const authorities = trusting(authority);
    const verify = async (policies: string) => {
      const bytes = await signRaw(world, authority, { ...content, policies });
      return codeOf(() => verifyBundle(bytes, { nowSeconds: BUNDLE_T0, authorities }));
    };
    expect(await verify('permit(principal, action, resource) when { resource.nope };')).toBe(
      'ERR_POLICY_INVALID',
    );
    expect(await verify('forbid(principal, action, resource')).toBe('ERR_POLICY_SYNTAX');
    expect(await verify('permit(principal == ?principal, action, resource);')).toBe(
      'ERR_POLICY_UNSUPPORTED',
    );
  });

  it('refuses malformed and oversize input before anything else', async () => {
    const world = bundleWorld();
    const authority = await world.authority('authority');
    const anySignature = decodeOuter(await world.sign(authority, 1))[1] as CborValue;
    const authorities = trusting(authority);
    const verify = (bytes: Uint8Array) => () =>
      verifyBundle(bytes, { nowSeconds: BUNDLE_T0, authorities });
    expect(codeOf(verify(new Uint8Array([1, 2, 3])))).toBe('ERR_BUNDLE_MALFORMED');
    expect(codeOf(verify(new Uint8Array(MAX_BUNDLE_BYTES + 1)))).toBe('ERR_BUNDLE_TOO_LARGE');
    // A credential is not a bundle: the data type says so.
    const wrongType = encodeCbor([
      encodeVersionedData(3, encodeBundleContent({ ...sample(authority), version: 1 })),
      anySignature,
      authority.credentialKeyAttestation,
    ]);
    expect(codeOf(verify(wrongType))).toBe('ERR_BUNDLE_MALFORMED');
    // Version 0 never verifies (signed or not).
    const zero = encodeCbor([
      authority.identity.changes[0]!.changeHash,
      0,
      BUNDLE_T0,
      TEST_POLICIES,
      TEST_SCHEMA,
    ]);
    const zeroBundle = encodeCbor([
      encodeVersionedData(BUNDLE_DATA_TYPE, zero),
      anySignature,
      authority.credentialKeyAttestation,
    ]);
    expect(codeOf(() => peekBundle(zeroBundle))).toBe('ERR_BUNDLE_MALFORMED');
    expect(
      codeOf(() =>
        encodeBundleContent({
          ...sample(authority),
          version: 1,
          policies: 'x'.repeat(MAX_BUNDLE_BYTES),
        }),
      ),
    ).toBe('ERR_BUNDLE_TOO_LARGE');
  });
});

function sample(issuer: CredentialIssuer) {
  return {
    issuer: issuer.identity.identifier,
    createdAt: BUNDLE_T0,
    policies: TEST_POLICIES,
    schema: TEST_SCHEMA,
  };
}

/** The SignedBundle's three items (data, signature, attestation), re-encodable as they are. */
function decodeOuter(bytes: Uint8Array): unknown[] {
  const value = decodeCbor(bytes);
  if (!Array.isArray(value)) throw new Error('not an array');
  return value;
}

describe('a bundle binds its tool catalog (outside-attack hole F2)', () => {
  const tools = [
    {
      name: 'refund',
      server: 'crm',
      inputSchema: { type: 'object', properties: { amount: { type: 'integer' } } },
    },
  ];

  it('signs the catalog in canonically; verifyBundle compiles it; a bundle without one has none', async () => {
    const world = bundleWorld();
    const authority = await world.authority('authority');
    const catalog = new ToolCatalog(tools);
    const bytes = await signBundle(
      world.vault,
      authority,
      { policies: TEST_POLICIES, schema: TEST_SCHEMA, version: 1, catalog },
      { nowSeconds: BUNDLE_T0 },
    );
    const bundle = verifyBundle(bytes, { nowSeconds: BUNDLE_T0, authorities: trusting(authority) });
    expect(bundle.catalog?.digest).toBe(catalog.digest);
    expect(bundle.catalog?.get('refund', 'crm')?.descriptor.inputSchema).toEqual(
      tools[0]!.inputSchema,
    );
    const plain = verifyBundle(await world.sign(authority, 2), {
      nowSeconds: BUNDLE_T0,
      authorities: trusting(authority),
    });
    expect(plain.catalog).toBeUndefined();
    // A catalog that is not canonical (or does not compile) is refused, even signed.
    const content = {
      issuer: authority.identity.identifier,
      version: 3,
      createdAt: BUNDLE_T0,
      policies: TEST_POLICIES,
      schema: TEST_SCHEMA,
    };
    const loose = await signRaw(world, authority, { ...content, catalog: JSON.stringify(tools) });
    expect(
      codeOf(() =>
        verifyBundle(loose, { nowSeconds: BUNDLE_T0, authorities: trusting(authority) }),
      ),
    ).toBe('ERR_GATE_CATALOG_INVALID');
    const hostile = await signRaw(world, authority, {
      ...content,
      catalog: '[{"inputSchema":{"$ref":"#","type":"object"},"name":"t","server":"s"}]',
    });
    expect(
      codeOf(() =>
        verifyBundle(hostile, { nowSeconds: BUNDLE_T0, authorities: trusting(authority) }),
      ),
    ).toBe('ERR_GATE_CATALOG_INVALID');
  });
});
