import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../src/encoding/index.js';
import { sha256, verifyEd25519 } from '../../src/crypto/index.js';
import { decodePurposeKeyAttestation } from '../../src/identity/internal.js';
import {
  Purpose,
  verifyChangeHistory,
  type Identifier,
  type VerifiedIdentity,
} from '../../src/identity/index.js';
import { decodeCredential, verifyCredential } from '../../src/credentials/credential.js';
import {
  encodeCredentialAndPurposeKey,
  encodeCredentialData,
} from '../../src/credentials/credential-codec.js';
import { expectCode } from '../helpers/errors.js';
import { list, readVectorJson, record, text } from '../helpers/vectors.js';

// credential-refresh.json: a Rust-encoded RefreshCredentials secure-channel message from Ockam's
// Elixir test suite (see test/vectors/data/ockam/README.md).
const root = record(
  record(readVectorJson('ockam/credential-refresh.json'), 'vector').refresh_credentials,
  'refresh_credentials',
);
const message = fromHex(text(root.message_hex, 'message_hex'));
const history = record(root.change_history, 'change_history');
const entry = record(list(root.credentials, 'credentials')[0], 'credentials[0]');
const credentialVector = record(entry.credential, 'credential');
const credentialData = record(credentialVector.credential_data, 'credential_data');
const subjectAttributes = record(credentialData.subject_attributes, 'subject_attributes');
const attestationVector = record(entry.purpose_key_attestation, 'purpose_key_attestation');
const attestationData = record(attestationVector.attestation_data, 'attestation_data');
const ranges = record(entry.byte_ranges_in_message, 'byte_ranges_in_message');

function range(name: string): Uint8Array {
  const r = list(ranges[name], name);
  const [start, end] = r;
  if (typeof start !== 'number' || typeof end !== 'number') throw new Error(`${name} range`);
  return message.subarray(start, end);
}

function int(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new Error(`${what} integer`);
  return value;
}

function historyRange(): Uint8Array {
  const [start, end] = list(history.byte_range_in_message, 'byte_range_in_message');
  if (typeof start !== 'number' || typeof end !== 'number') throw new Error('history range');
  return message.subarray(start, end);
}

const bytes = range('credential_and_purpose_key');
const createdAt = int(credentialData.created_at, 'created_at');
const expiresAt = int(credentialData.expires_at, 'expires_at');

describe('Ockam credential (credential-refresh.json, RefreshCredentials from messages_test.exs)', () => {
  it('decodes every field of the Rust-encoded CredentialAndPurposeKey', () => {
    const decoded = decodeCredential(bytes);
    expect(decoded.subject).toBe(text(credentialData.subject, 'subject'));
    expect(toHex(decoded.subjectLatestChangeHash)).toBe(
      text(credentialData.subject_latest_change_hash, 'subject_latest_change_hash'),
    );
    expect(decoded.schema).toBe(1);
    expect(decoded.schema).toBe(int(subjectAttributes.schema, 'schema'));
    const expected = list(subjectAttributes.attributes, 'attributes').map((a) => {
      const attribute = record(a, 'attribute');
      return [text(attribute.key, 'key'), text(attribute.value_hex, 'value_hex')];
    });
    // Wire order, which is raw byte order (ockam-relay before ockam-role).
    expect([...decoded.attributes].map(([k, v]) => [k, toHex(v)])).toEqual(expected);
    expect([...decoded.attributes.keys()]).toEqual([
      'ockam-relay',
      'ockam-role',
      'project_id',
      'trust_context_id',
    ]);
    expect(decoded.createdAt).toBe(createdAt);
    expect(decoded.expiresAt).toBe(expiresAt);
    expect(expiresAt - createdAt).toBe(30);
    expect(toHex(decoded.data)).toBe(text(credentialVector.data_hex, 'data_hex'));
    expect(decoded.signature.keyType).toBe('ed25519');
    expect(toHex(decoded.signature.bytes)).toBe(
      text(record(credentialVector.signature, 'signature').hex, 'signature hex'),
    );
    // The attestation is the embedded item's bytes as received, not a re-encoding.
    expect(toHex(decoded.attestation)).toBe(toHex(range('purpose_key_attestation')));
    expect(toHex(sha256(decoded.data))).toBe(
      text(credentialVector.signed_message_hex, 'signed_message_hex'),
    );
  });

  it('names the sender of the message as its subject, at its latest change', () => {
    const sender = verifyChangeHistory(historyRange());
    const decoded = decodeCredential(bytes);
    expect(sender.identifier).toBe(text(history.expected_identifier, 'expected_identifier'));
    expect(decoded.subject).toBe(sender.identifier);
    expect(toHex(decoded.subjectLatestChangeHash)).toBe(toHex(sender.latestChangeHash));
  });

  it('verifies the Ed25519 signature over SHA-256(credential.data) with the attested key', () => {
    const decoded = decodeCredential(bytes);
    const attestation = decodePurposeKeyAttestation(decoded.attestation);
    expect(`I${toHex(attestation.subject)}`).toBe(text(attestationData.subject, 'issuer'));
    expect(attestation.createdAt).toBe(int(attestationData.created_at, 'created_at'));
    expect(attestation.expiresAt).toBe(int(attestationData.expires_at, 'expires_at'));
    if (attestation.key.purpose !== Purpose.credentials) throw new Error('not a credential key');
    const key = attestation.key.signingKey;
    expect(key.keyType).toBe('ed25519');
    expect(toHex(key.bytes)).toBe(
      text(record(attestationData.public_key, 'public_key').hex, 'public key hex'),
    );
    // The credential window lies inside the key's window.
    expect(attestation.createdAt).toBeLessThanOrEqual(decoded.createdAt);
    expect(decoded.expiresAt).toBeLessThanOrEqual(attestation.expiresAt);

    expect(verifyEd25519(key.bytes, sha256(decoded.data), decoded.signature.bytes)).toBe(true);
    // Not over the raw data, and not over any flipped byte of it.
    expect(verifyEd25519(key.bytes, decoded.data, decoded.signature.bytes)).toBe(false);
    for (let i = 0; i < decoded.data.length; i++) {
      const flipped = decoded.data.slice();
      flipped[i]! ^= 0x01;
      expect(verifyEd25519(key.bytes, sha256(flipped), decoded.signature.bytes)).toBe(false);
    }
  });

  it('does not accept the credential without the issuer history: the issuer is untrusted', () => {
    const sender = verifyChangeHistory(historyRange());
    const none = new Map<Identifier, VerifiedIdentity>();
    expectCode(
      () => verifyCredential(bytes, { nowSeconds: createdAt + 1, authorities: none }),
      'ERR_CREDENTIAL_UNTRUSTED_ISSUER',
    );
    // Trusting some other identity (here the subject itself) does not make the issuer trusted.
    const other = new Map([[sender.identifier, sender]]);
    expectCode(
      () =>
        verifyCredential(bytes, { nowSeconds: createdAt + 1, authorities: other, subject: sender }),
      'ERR_CREDENTIAL_UNTRUSTED_ISSUER',
    );
  });

  it('re-encodes the decoded structure to the same bytes (attributes in raw byte order)', () => {
    const decoded = decodeCredential(bytes);
    const data = encodeCredentialData({
      subject: fromHex(decoded.subject.slice(1)),
      subjectLatestChangeHash: decoded.subjectLatestChangeHash,
      schema: decoded.schema,
      // Reversed on purpose: the encoder sorts the names by their bytes, as Rust's BTreeMap does.
      attributes: new Map([...decoded.attributes].reverse()),
      createdAt: decoded.createdAt,
      expiresAt: decoded.expiresAt,
    });
    expect(toHex(data)).toBe(toHex(decoded.data));
    expect(toHex(encodeCredentialAndPurposeKey(data, decoded.signature, decoded.attestation))).toBe(
      toHex(bytes),
    );
  });

  it('finds the credential list exactly where the vector says', () => {
    const [start, end] = list(root.credentials_byte_range_in_message, 'credentials range');
    if (typeof start !== 'number' || typeof end !== 'number') throw new Error('range');
    // A one-item CBOR array header, then the CredentialAndPurposeKey.
    expect(message[start]).toBe(0x81);
    expect(toHex(message.subarray(start + 1, end))).toBe(toHex(bytes));
  });
});
