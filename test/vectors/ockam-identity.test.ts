import { describe, expect, it } from 'vitest';
import { isMandateError } from '../../src/core/index.js';
import { fromHex, toHex } from '../../src/encoding/index.js';
import { sha256, verifyEd25519 } from '../../src/crypto/index.js';
import { decodePurposeKeyAttestation } from '../../src/identity/internal.js';
import { parseIdentifier, Purpose, verifyChangeHistory } from '../../src/identity/index.js';
import { decodeChangeHistoryEnvelope, encodeChangeHistory } from '../../src/identity/codec.js';
import { readVectorJson } from '../helpers/vectors.js';

interface ChangeVector {
  data_hex: string;
  change_data: {
    previous_change: string | null;
    primary_public_key: { variant: number; hex: string };
    revoke_all_purpose_keys: boolean;
    attestations_valid_from: number;
    attestations_valid_until: number;
  };
  change_hash_hex: string;
  signature: { hex: string };
}

interface HistoryVector {
  change_history_hex: string;
  expected_identifier: string;
  changes: ChangeVector[];
}

const single = readVectorJson('ockam/identity-ed25519.json') as HistoryVector;
const refresh = readVectorJson('ockam/credential-refresh.json') as {
  refresh_credentials: {
    change_history: { hex: string; expected_identifier: string; changes: ChangeVector[] };
    credentials: {
      purpose_key_attestation: {
        data_hex: string;
        signature: { hex: string };
        attestation_data: {
          subject: string;
          subject_latest_change_hash: string;
          public_key: { hex: string };
          created_at: number;
          expires_at: number;
        };
      };
    }[];
  };
};

const histories: [string, string, string, ChangeVector[]][] = [
  [
    'identity-ed25519.json (Ockam test_display)',
    single.change_history_hex,
    single.expected_identifier,
    single.changes,
  ],
  [
    'credential-refresh.json sender history',
    refresh.refresh_credentials.change_history.hex,
    refresh.refresh_credentials.change_history.expected_identifier,
    refresh.refresh_credentials.change_history.changes,
  ],
];

describe.each(histories)('Ockam change history: %s', (_name, hex, expectedIdentifier, changes) => {
  const bytes = fromHex(hex);

  it('verifies and yields the expected identifier', () => {
    const identity = verifyChangeHistory(bytes, {
      expectedIdentifier: parseIdentifier(expectedIdentifier),
    });
    expect(identity.identifier).toBe(expectedIdentifier);
    expect(identity.changes).toHaveLength(changes.length);
    expect(toHex(identity.changeHistory)).toBe(hex);
  });

  it('decodes every field as the vector lists it', () => {
    const identity = verifyChangeHistory(bytes);
    changes.forEach((expected, i) => {
      const change = identity.changes[i]!;
      expect(toHex(change.data)).toBe(expected.data_hex);
      expect(toHex(change.changeHash)).toBe(expected.change_hash_hex);
      expect(change.previousChange).toBe(expected.change_data.previous_change);
      expect(change.primaryPublicKey.keyType).toBe(
        expected.change_data.primary_public_key.variant === 0 ? 'ed25519' : 'p256',
      );
      expect(toHex(change.primaryPublicKey.bytes)).toBe(
        expected.change_data.primary_public_key.hex,
      );
      expect(change.revokeAllPurposeKeys).toBe(expected.change_data.revoke_all_purpose_keys);
      expect(change.attestationsValidFrom).toBe(expected.change_data.attestations_valid_from);
      expect(change.attestationsValidUntil).toBe(expected.change_data.attestations_valid_until);
      expect(toHex(change.signature)).toBe(expected.signature.hex);
    });
  });

  it('signs SHA-256(data), not the raw data', () => {
    const c = changes[0]!;
    const key = fromHex(c.change_data.primary_public_key.hex);
    expect(verifyEd25519(key, sha256(fromHex(c.data_hex)), fromHex(c.signature.hex))).toBe(true);
    expect(verifyEd25519(key, fromHex(c.data_hex), fromHex(c.signature.hex))).toBe(false);
  });

  it('re-encodes byte for byte (minicbor shortest form)', () => {
    expect(toHex(encodeChangeHistory(decodeChangeHistoryEnvelope(bytes, 1 << 16, 16)))).toBe(hex);
  });

  it('fails import under any other expected identifier', () => {
    const other = `I${'0'.repeat(64)}` as const;
    try {
      verifyChangeHistory(bytes, { expectedIdentifier: other });
      expect.unreachable();
    } catch (error) {
      expect(isMandateError(error, 'ERR_IDENTITY_IDENTIFIER_MISMATCH')).toBe(true);
    }
  });
});

describe('Ockam purpose key attestation (credential-refresh.json)', () => {
  it('decodes the issuer credential-key attestation', () => {
    const vector = refresh.refresh_credentials.credentials[0]!.purpose_key_attestation;
    // The fixture gives data and signature separately; the wire form is [data, signature].
    const encoded = fromHex(
      `8258${(vector.data_hex.length / 2).toString(16).padStart(2, '0')}${vector.data_hex}8200815840${vector.signature.hex}`,
    );
    const decoded = decodePurposeKeyAttestation(encoded);
    expect(`I${toHex(decoded.subject)}`).toBe(vector.attestation_data.subject);
    expect(toHex(decoded.changeHash)).toBe(vector.attestation_data.subject_latest_change_hash);
    expect(decoded.key.purpose).toBe(Purpose.credentials);
    if (decoded.key.purpose !== Purpose.credentials) throw new Error('unreachable');
    expect(decoded.key.signingKey.keyType).toBe('ed25519');
    expect(toHex(decoded.key.signingKey.bytes)).toBe(vector.attestation_data.public_key.hex);
    expect(decoded.createdAt).toBe(vector.attestation_data.created_at);
    expect(decoded.expiresAt).toBe(vector.attestation_data.expires_at);
    expect(toHex(decoded.signature.bytes)).toBe(vector.signature.hex);
  });
});
