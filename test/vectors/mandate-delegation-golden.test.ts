import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../src/encoding/index.js';
import { sha256 } from '../../src/crypto/index.js';
import {
  parseIdentifier,
  Purpose,
  verifyChangeHistory,
  verifyPurposeKeyAttestation,
} from '../../src/identity/index.js';
import {
  authorize,
  decodeChain,
  DenySet,
  DenyEntryKind,
  formatConstraint,
  formatEnrollmentTicket,
  parseEnrollmentTicket,
  verifyChain,
  type VerifiedChain,
} from '../../src/credentials/index.js';
import { codeOf } from '../helpers/errors.js';
import { repoRoot } from '../helpers/vectors.js';
import { buildDelegationVectors } from './delegation-golden.js';

type Golden = ReturnType<typeof buildDelegationVectors>;

const text = readFileSync(
  join(repoRoot, 'docs', 'spec', 'vectors', 'delegation-chain.json'),
  'utf8',
);
// The first test proves the file has exactly the builder's shape and values.
const golden = JSON.parse(text) as Golden;

const authorityIdentity = verifyChangeHistory(fromHex(golden.identities.authority.changeHistory));
const authorities = new Map([[authorityIdentity.identifier, authorityIdentity]]);
const { verifiedAt } = golden.times;

const verified = (links: number): VerifiedChain => {
  const chain = golden.chains.find((c) => c.links === links)!;
  return verifyChain(fromHex(chain.bytes), { nowSeconds: verifiedAt, authorities });
};

describe('Mandate golden delegation vectors (docs/spec/vectors/delegation-chain.json)', () => {
  it('are reproduced byte for byte from their seeds', () => {
    const built = buildDelegationVectors();
    expect(golden).toEqual(built);
    // Same keys in the same order, same values: only whitespace may differ (Prettier's).
    expect(JSON.stringify(golden)).toBe(JSON.stringify(built));
  });

  it('identities verify, and their credential keys are the attested ones', () => {
    for (const identity of Object.values(golden.identities)) {
      const history = verifyChangeHistory(fromHex(identity.changeHistory), {
        expectedIdentifier: parseIdentifier(identity.identifier),
      });
      expect(toHex(history.latestChangeHash)).toBe(identity.changeHash);
      const key = verifyPurposeKeyAttestation(history, fromHex(identity.credentialKeyAttestation), {
        nowSeconds: verifiedAt,
        expectedPurpose: Purpose.credentials,
      });
      expect([key.createdAt, key.expiresAt]).toEqual(identity.attestationWindow);
      expect(key.key.purpose === Purpose.credentials && toHex(key.key.signingKey.bytes)).toBe(
        identity.credentialPublicKey,
      );
    }
  });

  it('each valid chain verifies at its time, presented by its last subject', () => {
    for (const expected of golden.chains) {
      const chain = verifyChain(fromHex(expected.bytes), {
        nowSeconds: verifiedAt,
        authorities,
        presenter: parseIdentifier(expected.actor),
      });
      expect(chain.actor).toBe(expected.actor);
      expect(chain.links).toHaveLength(expected.links);
      expect(chain.notBefore).toBe(expected.notBefore);
      expect(chain.expiresAt).toBe(expected.expiresAt);
      expect(chain.remainingDepth).toBe(expected.remainingDepth);
      expect(toHex(chain.hash)).toBe(expected.hash);
      expect(chain.steps).toEqual(expected.steps);
      const identifiers = expected.histories.map((name) => golden.identities[name].identifier);
      expect(decodeChain(fromHex(expected.bytes)).histories.map(toHex)).toEqual(
        expected.histories.map((name) => golden.identities[name].changeHistory),
      );
      for (const id of identifiers) expect(chain.identities.has(parseIdentifier(id))).toBe(true);
    }
  });

  it('the root credential: summary, hash and revocation id', () => {
    const root = verified(0).root;
    const expected = golden.rootCredential;
    expect(toHex(root.bytes)).toBe(expected.credential);
    expect(root.issuer).toBe(expected.summary.issuer);
    expect(root.subject).toBe(expected.summary.subject);
    expect(root.schema).toBe(expected.summary.schema);
    expect(root.createdAt).toBe(expected.summary.createdAt);
    expect(root.expiresAt).toBe(expected.summary.expiresAt);
    expect(
      Object.fromEntries([...root.attributes].map(([n, v]) => [n, new TextDecoder().decode(v)])),
    ).toEqual(expected.summary.attributes);
    expect(toHex(root.hash)).toBe(expected.hash);
    expect(toHex(sha256(fromHex(expected.data)))).toBe(expected.hash);
    expect(root.revocationId).toBe(expected.revocationId);
    expect(verified(0).rootDepth).toBe(expected.summary.maxDepth);
  });

  it('the links: decoded fields, hash (the next parent) and revocation id', () => {
    const chain = verified(2);
    const decoded = decodeChain(fromHex(golden.chains[2]!.bytes));
    expect(toHex(decoded.root)).toBe(golden.rootCredential.credential);
    for (const [i, expected] of golden.links.entries()) {
      const link = decoded.links[i]!;
      const summary = expected.summary;
      expect(toHex(decoded.linkBytes[i]!)).toBe(expected.link);
      expect(toHex(link.data)).toBe(expected.data);
      expect(toHex(link.signature.bytes)).toBe(expected.signature);
      expect(`I${toHex(link.issuer)}`).toBe(summary.issuer);
      expect(`I${toHex(link.subject)}`).toBe(summary.subject);
      expect(toHex(link.parent)).toBe(summary.parent);
      expect(
        Object.fromEntries([...link.constraints].map(([n, v]) => [n, new TextDecoder().decode(v)])),
      ).toEqual(summary.constraints);
      expect(link.notBefore).toBe(summary.notBefore);
      expect(link.expiresAt).toBe(summary.expiresAt);
      expect(link.depth).toBe(summary.depth);
      expect(link.purpose).toBe(summary.purpose);
      expect(toHex(link.nonce)).toBe(summary.nonce);

      const verifiedLink = chain.links[i]!;
      expect(verifiedLink.expiresAt).toBe(summary.effectiveExpiresAt);
      expect([...verifiedLink.constraints].map(([n, c]) => formatConstraint(n, c))).toEqual(
        Object.entries(summary.constraints).map(([n, v]) => `${n}${v}`),
      );
      expect(toHex(verifiedLink.hash)).toBe(expected.hash);
      expect(verifiedLink.revocationId).toBe(expected.revocationId);
    }
    // Each element names the one before it.
    expect(golden.links[0]!.summary.parent).toBe(golden.rootCredential.hash);
    expect(golden.links[1]!.summary.parent).toBe(golden.links[0]!.hash);
  });

  it('must-fail chains fail with their code', () => {
    for (const vector of golden.mustFail) {
      const denySet =
        vector.revoked === undefined
          ? undefined
          : DenySet.fromSnapshot(
              {
                sequence: vector.revoked.length,
                entries: vector.revoked.map((id) => ({
                  kind: DenyEntryKind.revocationId,
                  id,
                  expiresAt: golden.rootCredential.summary.expiresAt,
                  revokedAt: vector.nowSeconds,
                })),
                issuedAt: vector.nowSeconds,
              },
              { maxStalenessSeconds: 300 },
            );
      const code = codeOf(() =>
        verifyChain(fromHex(vector.chain), {
          nowSeconds: vector.nowSeconds,
          authorities,
          ...(vector.presenter === undefined
            ? {}
            : { presenter: parseIdentifier(vector.presenter) }),
          ...(denySet === undefined ? {} : { denySet }),
        }),
      );
      expect({ name: vector.name, code }).toEqual({ name: vector.name, code: vector.code });
    }
  });

  it('authorization: (chain, request) → decision, naming the failing level and constraint', () => {
    for (const vector of golden.authorization) {
      const decision = authorize(verified(vector.links), {
        action: vector.request.action,
        args: new Map(Object.entries(vector.request.args)),
        nowSeconds: vector.request.nowSeconds,
      });
      const got =
        decision.decision === 'allow'
          ? { decision: decision.decision, actor: decision.actor }
          : {
              decision: decision.decision,
              actor: decision.actor,
              level: decision.failed.link,
              constraint: decision.failed.constraint,
            };
      expect({ name: vector.name, ...got }).toEqual({ name: vector.name, ...vector.expected });
    }
  });
});

describe('Mandate golden enrollment ticket (docs/spec/vectors/delegation-chain.json)', () => {
  const vector = golden.enrollmentTicket;

  it('parses to its fields', () => {
    const ticket = parseEnrollmentTicket(`  ${vector.text}\n`);
    expect(ticket.authority.identifier).toBe(vector.authority);
    expect(toHex(ticket.authority.changeHistory)).toBe(golden.identities.authority.changeHistory);
    expect(ticket.route).toBe(vector.route);
    expect(toHex(ticket.code)).toBe(vector.code);
    expect(ticket.expiresAt).toBe(vector.expiresAt);
    expect(toHex(sha256(ticket.code))).toBe(vector.codeHash);
    expect(vector.text.startsWith('mandate1.')).toBe(true);
    expect(toHex(Buffer.from(vector.text.slice('mandate1.'.length), 'base64url'))).toBe(
      vector.payload,
    );
  });

  it('is written back identically by formatEnrollmentTicket', () => {
    expect(
      formatEnrollmentTicket({
        authority: authorityIdentity,
        route: vector.route,
        code: fromHex(vector.code),
        expiresAt: vector.expiresAt,
      }),
    ).toBe(vector.text);
  });

  it('malformed tickets fail with their code', () => {
    for (const bad of vector.mustFail) {
      expect({ name: bad.name, code: codeOf(() => parseEnrollmentTicket(bad.text)) }).toEqual({
        name: bad.name,
        code: bad.code,
      });
    }
  });
});
