import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isMandateError } from '../core/index.js';
import { CborMap, encodeCbor, toHex, type CborValue } from '../encoding/index.js';
import { sha256 } from '../crypto/index.js';
import { MemoryVault, SigningKeyType, type SigningKeyHandle } from '../vault/index.js';
import {
  attestPurposeKey,
  decodePurposeKeyAttestation,
  encodeVersionedData,
} from '../identity/internal.js';
import { createIdentity, rotateIdentity } from '../identity/create-identity.js';
import { DEFAULT_ROTATION_GRACE_SECONDS } from '../identity/purpose-keys.js';
import {
  Purpose,
  verifyChangeHistory,
  type Identifier,
  type VerifiedIdentity,
} from '../identity/index.js';
import {
  credentialRevocationId,
  DEFAULT_CREDENTIAL_TTL_SECONDS,
  decodeCredential,
  issueCredential,
  MAX_CREDENTIAL_BYTES,
  MAX_CREDENTIAL_TTL_SECONDS,
  verifyCredential,
  verifyCredentialWith,
  type CredentialAttributes,
  type CredentialIssuer,
  type VerifyCredentialOptions,
} from './credential.js';
import { encodeCredentialAndPurposeKey } from './credential-codec.js';
import { VerifiedAttestations } from './credential-key.js';
import { revocationIdOf } from './revocation-id.js';
import { codeOf, expectCode, thrown } from '../../test/helpers/errors.js';

// Fixed times, as a ManualClock would give them: identities at T0, attestations at T0 for
// ATTESTATION_TTL, credentials issued at NOW.
const T0 = 1_800_000_000;
const ATTESTATION_TTL = 90 * 24 * 3600;
const NOW = T0 + 1000;

const utf8 = new TextEncoder();
const ATTRIBUTES: CredentialAttributes = new Map([
  ['role', utf8.encode('member')],
  ['project', utf8.encode('p-1')],
  ['ockam-relay', utf8.encode('*')],
]);

interface TestIssuer extends CredentialIssuer {
  readonly primaryKeyId: string;
  readonly credentialKey: SigningKeyHandle;
}

async function makeIssuer(
  vault: MemoryVault,
  primaryType: SigningKeyType = SigningKeyType.ed25519,
  credentialType: SigningKeyType = SigningKeyType.ed25519,
): Promise<TestIssuer> {
  const { identity, primaryKey } = await createIdentity(vault, {
    nowSeconds: T0,
    keyType: primaryType,
  });
  const credentialKey = await vault.generateSigningKey(credentialType);
  const credentialKeyAttestation = await attestPurposeKey(
    vault,
    identity,
    primaryKey.keyId,
    {
      purpose: Purpose.credentials,
      signingKey: { keyType: credentialKey.keyType, bytes: credentialKey.publicKey },
    },
    { nowSeconds: T0, ttlSeconds: ATTESTATION_TTL },
  );
  return {
    identity,
    primaryKeyId: primaryKey.keyId,
    credentialKey,
    credentialKeyId: credentialKey.keyId,
    credentialKeyAttestation,
  };
}

function trusting(...identities: VerifiedIdentity[]): Map<Identifier, VerifiedIdentity> {
  return new Map(identities.map((i) => [i.identifier, i]));
}

async function setup(
  primaryType: SigningKeyType = SigningKeyType.ed25519,
  credentialType: SigningKeyType = SigningKeyType.ed25519,
) {
  const vault = new MemoryVault();
  const issuer = await makeIssuer(vault, primaryType, credentialType);
  const subject = (await createIdentity(vault, { nowSeconds: T0 })).identity;
  const credential = await issueCredential(vault, issuer, subject, ATTRIBUTES, {
    nowSeconds: NOW,
  });
  const options: VerifyCredentialOptions = {
    nowSeconds: NOW + 10,
    authorities: trusting(issuer.identity),
    subject,
  };
  return { vault, issuer, subject, credential, options };
}

/** CredentialData fields as raw CBOR, so a test can sign what issueCredential would refuse. */
interface RawFields {
  subject: Uint8Array;
  changeHash: Uint8Array;
  schema?: CborValue;
  attributes?: CborValue;
  createdAt: number;
  expiresAt: number;
}

function rawData(f: RawFields, dataType = 3, version = 1): Uint8Array {
  const attributes = f.attributes ?? new CborMap([[utf8.encode('a'), utf8.encode('1')]]);
  return encodeCbor([
    version,
    dataType,
    encodeCbor([f.subject, f.changeHash, [f.schema ?? 1, attributes], f.createdAt, f.expiresAt]),
  ]);
}

/** Signs arbitrary VersionedData bytes with a vault key and wraps them with an attestation. */
async function signRaw(
  vault: MemoryVault,
  key: SigningKeyHandle,
  data: Uint8Array,
  attestation: Uint8Array,
): Promise<Uint8Array> {
  const bytes = await vault.sign(key.keyId, sha256(data));
  return encodeCredentialAndPurposeKey(data, { keyType: key.keyType, bytes }, attestation);
}

function fieldsFor(subject: VerifiedIdentity, createdAt: number, expiresAt: number): RawFields {
  return {
    subject: subject.changes[0]!.changeHash,
    changeHash: subject.latestChangeHash,
    createdAt,
    expiresAt,
  };
}

const KEY_TYPES = [SigningKeyType.ed25519, SigningKeyType.p256];

describe('issueCredential → verifyCredential', () => {
  for (const primaryType of KEY_TYPES) {
    for (const credentialType of KEY_TYPES) {
      it(`round-trips with a ${primaryType} issuer and a ${credentialType} credential key`, async () => {
        const { issuer, subject, credential, options } = await setup(primaryType, credentialType);
        const verified = verifyCredential(credential, options);
        const decoded = decodeCredential(credential);
        expect(verified.issuer).toBe(issuer.identity.identifier);
        expect(verified.subject).toBe(subject.identifier);
        expect(verified.schema).toBe(1);
        expect(verified.createdAt).toBe(NOW);
        expect(verified.expiresAt).toBe(NOW + DEFAULT_CREDENTIAL_TTL_SECONDS);
        expect(verified.attributes).toEqual(ATTRIBUTES);
        // Encoded (and decoded) in byte order of the names.
        expect([...verified.attributes.keys()]).toEqual(['ockam-relay', 'project', 'role']);
        expect(verified.revocationId).toBe(revocationIdOf(verified.issuer, sha256(decoded.data)));
        expect(verified.revocationId).toMatch(/^[0-9a-f]{32}$/);
        expect(toHex(verified.hash)).toBe(toHex(sha256(decoded.data)));
        expect(verified.bytes).toBe(credential);
        expect(verified.issuerKey.subject).toBe(issuer.identity.identifier);
        expect(verified.issuerKey.attestation).toEqual(issuer.credentialKeyAttestation);
        expect(decoded.signature.keyType).toBe(credentialType);
        expect(toHex(decoded.subjectLatestChangeHash)).toBe(toHex(subject.latestChangeHash));
        // Without a subject to compare with, the same credential verifies too.
        expect(
          verifyCredential(credential, {
            nowSeconds: NOW,
            authorities: trusting(issuer.identity),
          }).subject,
        ).toBe(subject.identifier);
      });
    }
  }

  it('is valid from created_at - skew up to, not including, expires_at', async () => {
    const { credential, options } = await setup();
    const at = (nowSeconds: number, skew?: number) =>
      codeOf(() =>
        verifyCredential(credential, {
          ...options,
          nowSeconds,
          ...(skew === undefined ? {} : { maxClockSkewSeconds: skew }),
        }),
      );
    expect(at(NOW - 60)).toBe('accepted');
    expect(at(NOW - 61)).toBe('ERR_CREDENTIAL_NOT_YET_VALID');
    expect(at(NOW - 1, 0)).toBe('ERR_CREDENTIAL_NOT_YET_VALID');
    expect(at(NOW, 0)).toBe('accepted');
    expect(at(NOW + DEFAULT_CREDENTIAL_TTL_SECONDS - 1)).toBe('accepted');
    expect(at(NOW + DEFAULT_CREDENTIAL_TTL_SECONDS)).toBe('ERR_CREDENTIAL_EXPIRED');
    // Issue 8, vulnerability 7: a clock that is not a safe non-negative integer is refused.
    for (const now of [Number.NaN, undefined, Infinity, -Infinity, NOW + 0.5, -1])
      expect(at(now as number), String(now)).toBe('ERR_ARGUMENT_INVALID');
  });

  it('takes ttl and schema, and clips expires_at to the attestation', async () => {
    const vault = new MemoryVault();
    const issuer = await makeIssuer(vault);
    const subject = (await createIdentity(vault, { nowSeconds: T0 })).identity;
    const options = { nowSeconds: NOW, authorities: trusting(issuer.identity) };
    const short = await issueCredential(vault, issuer, subject, ATTRIBUTES, {
      nowSeconds: NOW,
      ttlSeconds: 60,
      schema: 7,
    });
    const verified = verifyCredential(short, options);
    expect([verified.createdAt, verified.expiresAt, verified.schema]).toEqual([NOW, NOW + 60, 7]);

    const long = await issueCredential(vault, issuer, subject, ATTRIBUTES, {
      nowSeconds: T0 + ATTESTATION_TTL - 100,
      ttlSeconds: MAX_CREDENTIAL_TTL_SECONDS,
    });
    const clipped = verifyCredential(long, { ...options, nowSeconds: T0 + ATTESTATION_TTL - 50 });
    expect(clipped.expiresAt).toBe(T0 + ATTESTATION_TTL);
    expect(clipped.expiresAt).toBe(clipped.issuerKey.expiresAt);
  });

  it('gives every ttl its window (property)', async () => {
    const vault = new MemoryVault();
    const issuer = await makeIssuer(vault);
    const subject = (await createIdentity(vault, { nowSeconds: T0 })).identity;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: MAX_CREDENTIAL_TTL_SECONDS }), async (ttl) => {
        const bytes = await issueCredential(vault, issuer, subject, ATTRIBUTES, {
          nowSeconds: NOW,
          ttlSeconds: ttl,
        });
        const verified = verifyCredential(bytes, {
          nowSeconds: NOW,
          authorities: trusting(issuer.identity),
          subject,
        });
        expect(verified.expiresAt - verified.createdAt).toBe(ttl);
      }),
      { numRuns: 50 },
    );
  });

  it('sorts attribute names by their UTF-8 bytes, as Rust BTreeMap does', async () => {
    const { vault, issuer, subject, options } = await setup();
    // U+1F600 sorts before U+E000 in UTF-16 (surrogates) but after it in UTF-8.
    const attributes = new Map([
      ['\u{1F600}', utf8.encode('x')],
      ['\uE000', utf8.encode('y')],
      ['B', new Uint8Array()],
      ['a', new Uint8Array([0, 255])],
    ]);
    const bytes = await issueCredential(vault, issuer, subject, attributes, { nowSeconds: NOW });
    const verified = verifyCredential(bytes, options);
    expect([...verified.attributes.keys()]).toEqual(['B', 'a', '\uE000', '\u{1F600}']);
    expect(verified.attributes.get('a')).toEqual(new Uint8Array([0, 255]));
    expect(verified.attributes.get('B')).toEqual(new Uint8Array());
  });
});

describe('issueCredential refuses', () => {
  it('a ttl of zero, below zero, fractional or longer than 30 days', async () => {
    const { vault, issuer, subject } = await setup();
    for (const ttlSeconds of [0, -1, 1.5, Number.NaN, MAX_CREDENTIAL_TTL_SECONDS + 1]) {
      await expect(
        issueCredential(vault, issuer, subject, ATTRIBUTES, { nowSeconds: NOW, ttlSeconds }),
      ).rejects.toMatchObject({ code: 'ERR_CREDENTIAL_TTL_INVALID' });
    }
    await expect(
      issueCredential(vault, issuer, subject, ATTRIBUTES, { nowSeconds: -1 }),
    ).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
    await expect(
      issueCredential(vault, issuer, subject, ATTRIBUTES, { nowSeconds: NOW, schema: -1 }),
    ).rejects.toMatchObject({ code: 'ERR_ARGUMENT_INVALID' });
  });

  it('attribute names that are empty, not UTF-8 or too long, and oversize credentials', async () => {
    const { vault, issuer, subject } = await setup();
    const bad = [
      '',
      '\uD800',
      'a\uDC00b',
      'x'.repeat(257),
      '\u00e9'.repeat(129),
      // shown to people: no terminal escapes, C1 or bidi controls
      'tools\x1b[2K',
      'a\rb',
      'c1\x9b',
      'rlo\u202e',
      'lri\u2066',
    ];
    for (const name of bad) {
      await expect(
        issueCredential(vault, issuer, subject, new Map([[name, new Uint8Array(1)]]), {
          nowSeconds: NOW,
        }),
      ).rejects.toMatchObject({ code: 'ERR_CREDENTIAL_ATTRIBUTES_INVALID' });
    }
    // 256 bytes is the limit, not 256 characters.
    await expect(
      issueCredential(vault, issuer, subject, new Map([['x'.repeat(256), new Uint8Array(1)]]), {
        nowSeconds: NOW,
      }),
    ).resolves.toBeInstanceOf(Uint8Array);
    await expect(
      issueCredential(
        vault,
        issuer,
        subject,
        new Map([['big', new Uint8Array(MAX_CREDENTIAL_BYTES)]]),
        { nowSeconds: NOW },
      ),
    ).rejects.toMatchObject({ code: 'ERR_CREDENTIAL_ATTRIBUTES_INVALID' });
  });

  it('an expired, ending or stale attestation, and a vault key that is not the attested key', async () => {
    const { vault, issuer, subject } = await setup();
    const end = T0 + ATTESTATION_TTL;
    await expect(
      issueCredential(vault, issuer, subject, ATTRIBUTES, { nowSeconds: end + 1 }),
    ).rejects.toMatchObject({ code: 'ERR_PURPOSE_KEY_EXPIRED' });
    await expect(
      issueCredential(vault, issuer, subject, ATTRIBUTES, { nowSeconds: end }),
    ).rejects.toMatchObject({ code: 'ERR_CREDENTIAL_WINDOW' });

    const rotated = await rotateIdentity(vault, issuer.identity, issuer.primaryKeyId, {
      nowSeconds: NOW,
    });
    await expect(
      issueCredential(vault, { ...issuer, identity: rotated.identity }, subject, ATTRIBUTES, {
        nowSeconds: NOW + 1,
      }),
    ).rejects.toMatchObject({ code: 'ERR_PURPOSE_KEY_STALE' });

    const other = await vault.generateSigningKey(SigningKeyType.ed25519);
    await expect(
      issueCredential(vault, { ...issuer, credentialKeyId: other.keyId }, subject, ATTRIBUTES, {
        nowSeconds: NOW,
      }),
    ).rejects.toMatchObject({ code: 'ERR_CREDENTIAL_SIGNATURE_INVALID' });
    // An attestation of another identity than the issuer's.
    const stranger = await makeIssuer(vault);
    await expect(
      issueCredential(
        vault,
        { ...issuer, credentialKeyAttestation: stranger.credentialKeyAttestation },
        subject,
        ATTRIBUTES,
        { nowSeconds: NOW },
      ),
    ).rejects.toMatchObject({ code: 'ERR_PURPOSE_KEY_SUBJECT_MISMATCH' });
  });
});

describe('verifyCredential rejects', () => {
  it('an issuer that is not among the authorities', async () => {
    const { vault, credential, options, subject } = await setup();
    const other = await makeIssuer(vault);
    expectCode(
      () => verifyCredential(credential, { ...options, authorities: new Map() }),
      'ERR_CREDENTIAL_UNTRUSTED_ISSUER',
    );
    expectCode(
      () =>
        verifyCredential(credential, {
          ...options,
          authorities: trusting(other.identity, subject),
        }),
      'ERR_CREDENTIAL_UNTRUSTED_ISSUER',
    );
    // A map entry under the issuer's identifier with another identity: the attestation says no.
    const lying = new Map([[decodeIssuer(credential), other.identity]]);
    expectCode(
      () => verifyCredential(credential, { ...options, authorities: lying }),
      'ERR_PURPOSE_KEY_SUBJECT_MISMATCH',
    );
  });

  it('a signature by another key, and a credential carrying another issuer’s attestation', async () => {
    const { vault, issuer, subject, options } = await setup();
    const data = decodeCredential(
      await issueCredential(vault, issuer, subject, ATTRIBUTES, { nowSeconds: NOW }),
    ).data;
    const stray = await vault.generateSigningKey(SigningKeyType.ed25519);
    const signedByStray = await signRaw(vault, stray, data, issuer.credentialKeyAttestation);
    expectCode(() => verifyCredential(signedByStray, options), 'ERR_CREDENTIAL_SIGNATURE_INVALID');
    // Signed by a second trusted issuer's attested key, presented with the first's attestation.
    const second = await makeIssuer(vault);
    const authorities = trusting(issuer.identity, second.identity);
    const signedBySecond = await signRaw(
      vault,
      second.credentialKey,
      data,
      issuer.credentialKeyAttestation,
    );
    expectCode(
      () => verifyCredential(signedBySecond, { ...options, authorities }),
      'ERR_CREDENTIAL_SIGNATURE_INVALID',
    );
    // The right signature with the second issuer's attestation: checked against that key.
    const swapped = decodeCredential(signedBySecond);
    const rewrapped = encodeCredentialAndPurposeKey(
      swapped.data,
      swapped.signature,
      second.credentialKeyAttestation,
    );
    expect(verifyCredential(rewrapped, { ...options, authorities }).issuer).toBe(
      second.identity.identifier,
    );
  });

  it('another subject, and a subject change the verifier does not know', async () => {
    const { vault, issuer, credential, options } = await setup();
    const stranger = (await createIdentity(vault, { nowSeconds: T0 })).identity;
    expectCode(
      () => verifyCredential(credential, { ...options, subject: stranger }),
      'ERR_CREDENTIAL_SUBJECT_MISMATCH',
    );
    // Issued to the subject after it rotated; the verifier still has the one-change history.
    const created = await createIdentity(vault, { nowSeconds: T0 });
    const rotated = await rotateIdentity(vault, created.identity, created.primaryKey.keyId, {
      nowSeconds: T0 + 10,
    });
    const afterRotation = await issueCredential(vault, issuer, rotated.identity, ATTRIBUTES, {
      nowSeconds: NOW,
    });
    expectCode(
      () => verifyCredential(afterRotation, { ...options, subject: created.identity }),
      'ERR_CREDENTIAL_SUBJECT_CHANGE_UNKNOWN',
    );
    expect(verifyCredential(afterRotation, { ...options, subject: rotated.identity }).subject).toBe(
      created.identity.identifier,
    );
    // An older change of a known history is still a change of it.
    const beforeRotation = await issueCredential(vault, issuer, created.identity, ATTRIBUTES, {
      nowSeconds: NOW,
    });
    expect(
      verifyCredential(beforeRotation, { ...options, subject: rotated.identity }).subject,
    ).toBe(created.identity.identifier);
  });

  it('windows outside the attestation, or ending before they start', async () => {
    const { vault, issuer, subject, options } = await setup();
    const signed = (createdAt: number, expiresAt: number) =>
      signRaw(
        vault,
        issuer.credentialKey,
        rawData(fieldsFor(subject, createdAt, expiresAt)),
        issuer.credentialKeyAttestation,
      );
    const end = T0 + ATTESTATION_TTL;
    const startsBefore = await signed(T0 - 1, NOW + 100);
    const endsAfter = await signed(NOW, end + 1);
    const endsBeforeStart = await signed(NOW + 30, NOW + 20);
    const exactly = await signed(T0, end);
    expectCode(() => verifyCredential(startsBefore, options), 'ERR_CREDENTIAL_WINDOW');
    expectCode(() => verifyCredential(endsAfter, options), 'ERR_CREDENTIAL_WINDOW');
    expectCode(() => verifyCredential(endsBeforeStart, options), 'ERR_CREDENTIAL_WINDOW');
    // Exactly the attestation's window is inside it.
    expect(verifyCredential(exactly, options).expiresAt).toBe(end);
  });

  it('a credential issued for later, and an expired one', async () => {
    const { vault, issuer, subject, options } = await setup();
    const later = await issueCredential(vault, issuer, subject, ATTRIBUTES, {
      nowSeconds: NOW + 1000,
    });
    expectCode(() => verifyCredential(later, options), 'ERR_CREDENTIAL_NOT_YET_VALID');
    const short = await issueCredential(vault, issuer, subject, ATTRIBUTES, {
      nowSeconds: NOW,
      ttlSeconds: 5,
    });
    expectCode(() => verifyCredential(short, options), 'ERR_CREDENTIAL_EXPIRED');
  });

  it('an issuer attestation beyond its rotation grace, or revoked by the rotation', async () => {
    const { vault, issuer, credential, options } = await setup();
    const rotatedAt = NOW + 100;
    const rotated = await rotateIdentity(vault, issuer.identity, issuer.primaryKeyId, {
      nowSeconds: rotatedAt,
    });
    const authorities = trusting(rotated.identity);
    const inGrace = verifyCredential(credential, {
      ...options,
      authorities,
      nowSeconds: rotatedAt + DEFAULT_ROTATION_GRACE_SECONDS - 1,
    });
    expect(inGrace.issuerKey.inRotationGrace).toBe(true);
    expectCode(
      () =>
        verifyCredential(credential, {
          ...options,
          authorities,
          nowSeconds: rotatedAt + DEFAULT_ROTATION_GRACE_SECONDS,
        }),
      'ERR_PURPOSE_KEY_STALE',
    );
    expectCode(
      () =>
        verifyCredential(credential, {
          ...options,
          authorities,
          nowSeconds: rotatedAt + 10,
          rotationGraceSeconds: 5,
        }),
      'ERR_PURPOSE_KEY_STALE',
    );
    const revoking = await rotateIdentity(vault, issuer.identity, issuer.primaryKeyId, {
      nowSeconds: rotatedAt,
      revokeAllPurposeKeys: true,
    });
    expectCode(
      () =>
        verifyCredential(credential, {
          ...options,
          authorities: trusting(revoking.identity),
          nowSeconds: rotatedAt + 1,
        }),
      'ERR_PURPOSE_KEY_REVOKED',
    );
  });

  it('a secure-channel key presented as the issuer key', async () => {
    const { vault, issuer, subject, options } = await setup();
    const channelKey = await vault.generateX25519Key();
    const channelAttestation = await attestPurposeKey(
      vault,
      issuer.identity,
      issuer.primaryKeyId,
      { purpose: Purpose.secureChannel, x25519: channelKey.publicKey },
      { nowSeconds: T0 },
    );
    const bytes = await signRaw(
      vault,
      issuer.credentialKey,
      rawData(fieldsFor(subject, NOW, NOW + 100)),
      channelAttestation,
    );
    expectCode(() => verifyCredential(bytes, options), 'ERR_PURPOSE_KEY_WRONG_PURPOSE');
  });

  it('correctly signed data that breaks the format: duplicate or bad names, wrong type or version', async () => {
    const { vault, issuer, subject, options } = await setup();
    const fields = fieldsFor(subject, NOW, NOW + 100);
    const sign = (data: Uint8Array) =>
      signRaw(vault, issuer.credentialKey, data, issuer.credentialKeyAttestation);

    // {a: 1, b: 2} with the second key patched to `a`: valid CBOR apart from the duplicate.
    const twoKeys = rawData({
      ...fields,
      attributes: new CborMap([
        [utf8.encode('a'), utf8.encode('1')],
        [utf8.encode('b'), utf8.encode('2')],
      ]),
    });
    const duplicate = twoKeys.slice();
    const at = findBytes(duplicate, [0x41, 0x62]);
    duplicate[at + 1] = 0x61;
    expect(verifyCredential(await sign(twoKeys), options).attributes.size).toBe(2);
    const cases: [string, Uint8Array][] = [
      ['duplicate key', duplicate],
      [
        'non-UTF-8 name',
        rawData({
          ...fields,
          attributes: new CborMap([[new Uint8Array([0xff]), new Uint8Array()]]),
        }),
      ],
      [
        'empty name',
        rawData({ ...fields, attributes: new CborMap([[new Uint8Array(), new Uint8Array()]]) }),
      ],
      [
        'long name',
        rawData({
          ...fields,
          attributes: new CborMap([[new Uint8Array(257).fill(0x61), new Uint8Array()]]),
        }),
      ],
      ['text name', rawData({ ...fields, attributes: new CborMap([['a', new Uint8Array()]]) })],
      ...['tools\x1b[2K', 'a\rb', 'del\x7f', 'c1\x85', 'rlo\u202e', 'pdi\u2069'].map(
        (name): [string, Uint8Array] => [
          `name ${JSON.stringify(name)}`,
          rawData({ ...fields, attributes: new CborMap([[utf8.encode(name), new Uint8Array()]]) }),
        ],
      ),
      ['text value', rawData({ ...fields, attributes: new CborMap([[utf8.encode('a'), 'v']]) })],
      ['schema not uint', rawData({ ...fields, schema: -1 })],
      ['attributes not a map', rawData({ ...fields, attributes: [] })],
      ['data type 2', rawData(fields, 2)],
      ['version 2', rawData(fields, 3, 2)],
      ['short subject', rawData({ ...fields, subject: fields.subject.subarray(1) })],
      [
        'trailing field',
        encodeVersionedData(
          3,
          encodeCbor([fields.subject, fields.changeHash, [1, new CborMap([])], NOW, NOW + 100, 0]),
        ),
      ],
      [
        'null subject',
        encodeVersionedData(
          3,
          encodeCbor([null, fields.changeHash, [1, new CborMap([])], NOW, NOW + 100]),
        ),
      ],
    ];
    for (const [what, data] of cases) {
      const bytes = await sign(data);
      expect(
        codeOf(() => verifyCredential(bytes, options)),
        what,
      ).toBe('ERR_CREDENTIAL_MALFORMED');
      expect(
        codeOf(() => decodeCredential(bytes)),
        what,
      ).toBe('ERR_CREDENTIAL_MALFORMED');
    }
  });

  it('every truncation, trailing bytes and oversize input', async () => {
    const { vault, issuer, subject, credential, options } = await setup();
    for (let n = 0; n < credential.length; n++) {
      expect(
        codeOf(() => verifyCredential(credential.subarray(0, n), options)),
        `length ${n}`,
      ).toBe('ERR_CREDENTIAL_MALFORMED');
    }
    const trailing = new Uint8Array(credential.length + 1);
    trailing.set(credential);
    expectCode(() => verifyCredential(trailing, options), 'ERR_CREDENTIAL_MALFORMED');
    // Well-formed CBOR where the attestation should be: the purpose-key layer's error.
    const decoded = decodeCredential(credential);
    const junk = encodeCredentialAndPurposeKey(
      decoded.data,
      decoded.signature,
      encodeCbor([utf8.encode('junk'), [0, [new Uint8Array(64)]]]),
    );
    expect(decodeCredential(junk).subject).toBe(decoded.subject);
    expectCode(() => verifyCredential(junk, options), 'ERR_PURPOSE_KEY_MALFORMED');
    const notAnArray = encodeCredentialAndPurposeKey(
      decoded.data,
      decoded.signature,
      encodeCbor(decoded.attestation),
    );
    expectCode(() => decodeCredential(notAnArray), 'ERR_CREDENTIAL_MALFORMED');
    expectCode(
      () => verifyCredential(new Uint8Array(MAX_CREDENTIAL_BYTES + 1), options),
      'ERR_CREDENTIAL_MALFORMED',
    );
    // A credential exactly at the bound verifies; one byte more is not issued.
    const sized = (valueBytes: number) =>
      issueCredential(vault, issuer, subject, new Map([['v', new Uint8Array(valueBytes)]]), {
        nowSeconds: NOW,
      });
    const probe = (await sized(1000)).length;
    const atBound = await sized(1000 + MAX_CREDENTIAL_BYTES - probe);
    expect(atBound.length).toBe(MAX_CREDENTIAL_BYTES);
    expect(verifyCredential(atBound, options).attributes.get('v')?.length).toBe(
      1000 + MAX_CREDENTIAL_BYTES - probe,
    );
    await expect(sized(1001 + MAX_CREDENTIAL_BYTES - probe)).rejects.toMatchObject({
      code: 'ERR_CREDENTIAL_ATTRIBUTES_INVALID',
    });
    const over = new Uint8Array(MAX_CREDENTIAL_BYTES + 1);
    over.set(atBound);
    expect(thrown(() => decodeCredential(over))).toMatchObject({
      code: 'ERR_CREDENTIAL_MALFORMED',
      message: expect.stringContaining('too large') as unknown,
    });
  });

  it('any one-bit flip anywhere (exhaustive, Ed25519 issuer and key)', async () => {
    const { credential, options } = await setup();
    const flipped = credential.slice();
    for (let i = 0; i < credential.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        flipped[i]! ^= 1 << bit;
        const code = codeOf(() => verifyCredential(flipped, options));
        if (!code.startsWith('ERR_')) throw new Error(`accepted a flip of bit ${bit} of byte ${i}`);
        flipped[i]! ^= 1 << bit;
      }
    }
  });

  it('any one-bit flip anywhere (property, P-256 issuers and keys)', async () => {
    const cases = [
      await setup(SigningKeyType.p256, SigningKeyType.p256),
      await setup(SigningKeyType.ed25519, SigningKeyType.p256),
      await setup(SigningKeyType.p256, SigningKeyType.ed25519),
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...cases),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.integer({ min: 0, max: 7 }),
        ({ credential, options }, where, bit) => {
          const bytes = credential.slice();
          bytes[Math.floor(where * bytes.length)]! ^= 1 << bit;
          expect(codeOf(() => verifyCredential(bytes, options))).toMatch(/^ERR_/);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('random bytes and random edits with nothing but a MandateError (property)', async () => {
    const { credential, options } = await setup();
    const onlyMandateErrors = (bytes: Uint8Array) => {
      for (const fn of [() => verifyCredential(bytes, options), () => decodeCredential(bytes)]) {
        try {
          fn();
        } catch (error) {
          if (!isMandateError(error)) throw error;
        }
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), onlyMandateErrors), {
      numRuns: 500,
    });
    // Edits of a valid credential reach the deeper decoders.
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.nat(), fc.nat({ max: 255 }), fc.constantFrom('set', 'insert', 'delete')),
          {
            minLength: 1,
            maxLength: 4,
          },
        ),
        (edits) => {
          let bytes = credential.slice();
          for (const [where, value, op] of edits) {
            const i = where % (bytes.length + 1);
            if (op === 'set' && i < bytes.length) bytes[i] = value;
            else if (op === 'insert')
              bytes = Uint8Array.from([...bytes.subarray(0, i), value, ...bytes.subarray(i)]);
            else bytes = Uint8Array.from([...bytes.subarray(0, i), ...bytes.subarray(i + 1)]);
          }
          onlyMandateErrors(bytes);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('revocationIdOf', () => {
  it('is 32 lowercase hex digits of the issuer and the signed data hash, domain-separated', () => {
    const issuer: Identifier = `I${'ab'.repeat(32)}`;
    const hash = new Uint8Array(32).fill(7);
    const id = revocationIdOf(issuer, hash);
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    const domain = utf8.encode('mandate/revocation-id/v2');
    expect(id).toBe(
      toHex(
        sha256(Uint8Array.from([...domain, ...new Uint8Array(32).fill(0xab), ...hash])).subarray(
          0,
          16,
        ),
      ),
    );
    expect(revocationIdOf(issuer, new Uint8Array(32).fill(8))).not.toBe(id);
    expect(revocationIdOf(`I${'cd'.repeat(32)}`, hash)).not.toBe(id);
  });

  it('refuses a signature (or anything but a 32-byte hash) and a malformed issuer', () => {
    const issuer: Identifier = `I${'ab'.repeat(32)}`;
    for (const bad of [new Uint8Array(64), new Uint8Array(31), new Uint8Array(0)])
      expectCode(() => revocationIdOf(issuer, bad), 'ERR_ARGUMENT_INVALID');
    expectCode(() => revocationIdOf('Iab', new Uint8Array(32)), 'ERR_ARGUMENT_INVALID');
  });

  it('is the same for two P-256 credentials with identical content: it names the content, not the signature', async () => {
    // P-256 signatures are randomised, so the two signatures differ; the revocation id must not,
    // or a second signature (or a malleated one) would be a way around a revocation (issue 8).
    const { vault, issuer, subject, options } = await setup(
      SigningKeyType.ed25519,
      SigningKeyType.p256,
    );
    const a = await issueCredential(vault, issuer, subject, ATTRIBUTES, { nowSeconds: NOW });
    const b = await issueCredential(vault, issuer, subject, ATTRIBUTES, { nowSeconds: NOW });
    expect(toHex(decodeCredential(a).data)).toBe(toHex(decodeCredential(b).data));
    expect(toHex(decodeCredential(a).signature.bytes)).not.toBe(
      toHex(decodeCredential(b).signature.bytes),
    );
    expect(verifyCredential(a, options).revocationId).toBe(
      verifyCredential(b, options).revocationId,
    );
    expect(credentialRevocationId(decodeCredential(a))).toBe(
      verifyCredential(a, options).revocationId,
    );
  });

  it('is the same for identical content, and differs with anything that differs', async () => {
    // Documented behaviour, not a goal: two issuances of the same content in the same second are
    // the same credential, so revoking one revokes both. Anything that differs separates them.
    const { vault, issuer, subject, credential, options } = await setup();
    const again = await issueCredential(vault, issuer, subject, ATTRIBUTES, { nowSeconds: NOW });
    expect(toHex(again)).toBe(toHex(credential));
    const nextSecond = await issueCredential(vault, issuer, subject, ATTRIBUTES, {
      nowSeconds: NOW + 1,
    });
    const otherAttributes = await issueCredential(
      vault,
      issuer,
      subject,
      new Map([...ATTRIBUTES, ['nonce', utf8.encode('1')]]),
      { nowSeconds: NOW },
    );
    const ids = new Set(
      [credential, nextSecond, otherAttributes].map(
        (c) => verifyCredential(c, options).revocationId,
      ),
    );
    expect(ids.size).toBe(3);
  });
});

function decodeIssuer(credential: Uint8Array): Identifier {
  return `I${toHex(decodePurposeKeyAttestation(decodeCredential(credential).attestation).subject)}`;
}

function findBytes(haystack: Uint8Array, needle: readonly number[]): number {
  for (let i = 0; i + needle.length <= haystack.length; i++) {
    if (needle.every((b, j) => haystack[i + j] === b)) return i;
  }
  throw new Error('not found');
}

/** The credential with its issuer's attestation replaced (its data and signature kept). */
function withAttestation(credential: Uint8Array, attestation: Uint8Array): Uint8Array {
  const decoded = decodeCredential(credential);
  return encodeCredentialAndPurposeKey(decoded.data, decoded.signature, attestation);
}

/** The attestation with one bit of its last byte (its signature's) flipped. */
function forged(attestation: Uint8Array): Uint8Array {
  const bytes = attestation.slice();
  bytes[bytes.length - 1]! ^= 0x01;
  return bytes;
}

describe('verified attestations (VerifiedAttestations, as a ChainVerifier keeps them)', () => {
  it('verifies an authority attestation once and reuses it while it holds', async () => {
    const { vault, issuer, credential, options } = await setup();
    const attestations = new VerifiedAttestations();
    const first = verifyCredentialWith(credential, options, attestations);
    // Another credential of the same issuer, later: the attestation verified before is reused.
    const other = await issueCredential(
      vault,
      issuer,
      (await createIdentity(vault, { nowSeconds: T0 })).identity,
      ATTRIBUTES,
      { nowSeconds: NOW + 50 },
    );
    const later = { nowSeconds: NOW + 60, authorities: options.authorities };
    expect(verifyCredentialWith(other, later, attestations).issuerKey).toBe(first.issuerKey);
    // Past the attestation's window it is checked again, and fails as it does without the cache.
    const expired = { ...options, nowSeconds: T0 + ATTESTATION_TTL + 1 };
    expect(codeOf(() => verifyCredentialWith(credential, expired, attestations))).toBe(
      'ERR_PURPOSE_KEY_EXPIRED',
    );
    expect(codeOf(() => verifyCredential(credential, expired))).toBe('ERR_PURPOSE_KEY_EXPIRED');
    // Kept per identity object: another verified copy of the issuer's history verifies afresh.
    const copy = verifyChangeHistory(issuer.identity.changeHistory);
    const again = verifyCredentialWith(
      credential,
      { ...options, authorities: trusting(copy) },
      attestations,
    );
    expect(again.issuerKey).not.toBe(first.issuerKey);
    expect(again.issuerKey.key).toEqual(first.issuerKey.key);
  });

  it('refuses a forged attestation for an issuer whose good one it holds, every time', async () => {
    const { credential, options } = await setup();
    const attestations = new VerifiedAttestations();
    verifyCredentialWith(credential, options, attestations);
    const bad = withAttestation(credential, forged(decodeCredential(credential).attestation));
    const expected = codeOf(() => verifyCredential(bad, options));
    expect(expected).toBe('ERR_PURPOSE_KEY_SIGNATURE_INVALID');
    expect(codeOf(() => verifyCredentialWith(bad, options, attestations))).toBe(expected);
    // A failure is not kept: refused again, and the good attestation still verifies.
    expect(codeOf(() => verifyCredentialWith(bad, options, attestations))).toBe(expected);
    expect(verifyCredentialWith(credential, options, attestations).issuer).toBe(
      verifyCredential(credential, options).issuer,
    );
  });

  it('refuses a forged attestation seen first, then verifies the good one', async () => {
    const { credential, options } = await setup();
    const attestations = new VerifiedAttestations();
    const bad = withAttestation(credential, forged(decodeCredential(credential).attestation));
    expect(codeOf(() => verifyCredentialWith(bad, options, attestations))).toBe(
      'ERR_PURPOSE_KEY_SIGNATURE_INVALID',
    );
    expect(verifyCredentialWith(credential, options, attestations).subject).toBe(
      options.subject?.identifier,
    );
    expect(codeOf(() => verifyCredentialWith(bad, options, attestations))).toBe(
      'ERR_PURPOSE_KEY_SIGNATURE_INVALID',
    );
  });
});
