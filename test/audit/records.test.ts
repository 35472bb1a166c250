// Audit records (docs/spec/audit.md, "Records"): golden vectors rebuilt byte for byte and checked
// with independent code; strict parsing; every field's tampering refused; signing and verifying.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import {
  auditRecordHash,
  jsonDigest,
  parseAuditRecord,
  readAuditRecord,
  recordSigningBytes,
  CHAIN_RECORD_TYPE,
  CHAIN_REF_INVOCATION_RECORD_TYPE,
  chainHashOf,
  EnforcerSigner,
  INVOCATION_RECORD_TYPE,
  InvocationSigner,
  signInvocation,
  verifyEnforcerRecord,
  verifyInvocation,
  type VerifiedInvocation,
  type VerifiedKeyCache,
} from '../../src/audit/index.js';
import { isMandateError } from '../../src/core/index.js';
import { canonicalizeJson, fromHex } from '../../src/encoding/index.js';
import { ed25519KeyPairFromSeed, signEd25519 } from '../../src/crypto/index.js';
import {
  buildAuditRecordVectors,
  delegationGolden,
  GOLDEN_ARGS,
  goldenParty,
  RECORDS_AT,
  SeedVault,
} from '../vectors/audit-records-golden.js';

const golden = JSON.parse(
  readFileSync(new URL('../../docs/spec/vectors/audit-records.json', import.meta.url), 'utf8'),
) as Awaited<ReturnType<typeof buildAuditRecordVectors>>;
const utf8 = new TextEncoder();
const bytesOf = (text: string): Uint8Array => utf8.encode(text);
const authority = goldenParty('authority');
const authorities = new Map([[authority.identity.identifier, authority.identity]]);
const enforcers = authorities;

function codeOf(work: () => unknown): string {
  try {
    work();
  } catch (error) {
    if (isMandateError(error)) return error.code;
    throw error;
  }
  return 'no error';
}

function invocationOf(text: string): VerifiedInvocation {
  return verifyInvocation(bytesOf(text), { authorities });
}

describe('golden audit records', () => {
  it('are rebuilt byte for byte from the fixed keys, nonces and times', async () => {
    expect(await buildAuditRecordVectors()).toEqual(golden);
  });

  it('verify: invocations by carol under her chain at their time, the rest by the enforcer', () => {
    const first = invocationOf(golden.invocation.text);
    expect(first.agent).toBe(golden.agent);
    expect(first.hash).toBe(golden.invocation.hash);
    expect(first.chain.actor).toBe(golden.agent);
    expect(first.record.argumentsDigest).toBe(jsonDigest(GOLDEN_ARGS));
    const second = invocationOf(golden.nextInvocation.text);
    expect(second.record.previous).toBe(first.hash);
    for (const [name, about] of [
      ['decision', first],
      ['outcome', first],
      ['lease', first],
      ['escalation', second],
      ['trace', second],
    ] as const) {
      const verified = verifyEnforcerRecord(bytesOf(golden[name].text), {
        enforcers,
        invocation: about,
      });
      expect(verified.hash).toBe(golden[name].hash);
    }
  });

  it('cut their signing bytes from the text exactly as JCS of the record without `signature`', () => {
    for (const name of [
      'invocation',
      'nextInvocation',
      'decision',
      'escalation',
      'outcome',
      'lease',
      'trace',
      'chainRecord',
      'invocationByHash',
    ] as const) {
      const { record, signingBytes } = readAuditRecord(bytesOf(golden[name].text));
      expect(new TextDecoder().decode(signingBytes)).toBe(
        new TextDecoder().decode(recordSigningBytes(record)),
      );
    }
  });

  it('verify the same through a key cache (one signature check per record), and fail the same', () => {
    const keys: VerifiedKeyCache = new Map();
    for (let round = 0; round < 2; round++) {
      const first = verifyInvocation(bytesOf(golden.invocation.text), { authorities, keys });
      verifyEnforcerRecord(bytesOf(golden.decision.text), { enforcers, invocation: first, keys });
    }
    expect(keys.size).toBe(2);
    for (const [key, text] of tamperedTexts(golden.invocation.text))
      expect(
        codeOf(() => verifyInvocation(bytesOf(text), { authorities, keys })),
        key,
      ).not.toBe('no error');
    const record = JSON.parse(golden.decision.text) as { signature: { value: string } };
    const flipped = record.signature.value.startsWith('A') ? 'B' : 'A';
    record.signature.value = flipped + record.signature.value.slice(1);
    expect(
      codeOf(() => verifyEnforcerRecord(bytesOf(canonicalizeJson(record)), { enforcers, keys })),
    ).not.toBe('no error');
    // Outside the cached key's window the full check runs again (and fails the same way).
    expect(
      codeOf(() =>
        verifyInvocation(bytesOf(golden.invocation.text), {
          authorities,
          keys,
          nowSeconds: delegationGolden.chains[2]!.expiresAt,
        }),
      ),
    ).toBe('ERR_DELEGATION_EXPIRED');
  });

  it('check out with independent code: noble SHA-256 and Ed25519 over JSON without `signature`', () => {
    const keys = {
      [golden.agent]: fromHex(
        (delegationGolden.identities.carol as unknown as { credentialPublicKey: string })
          .credentialPublicKey,
      ),
      [golden.enforcer]: fromHex(
        (delegationGolden.identities.authority as unknown as { credentialPublicKey: string })
          .credentialPublicKey,
      ),
    };
    for (const name of [
      'invocation',
      'nextInvocation',
      'decision',
      'outcome',
      'lease',
      'trace',
    ] as const) {
      const text = golden[name].text;
      expect(Buffer.from(nobleSha256(bytesOf(text))).toString('hex')).toBe(golden[name].hash);
      const parsed = JSON.parse(text) as Record<string, unknown> & {
        signature: { value: string };
        agent: string;
        enforcer?: string;
      };
      // JCS by hand for these records: sorted keys at every level (ASCII names), no whitespace.
      const sortKeys = (v: unknown): unknown =>
        Array.isArray(v)
          ? v.map(sortKeys)
          : v !== null && typeof v === 'object'
            ? Object.fromEntries(
                Object.keys(v)
                  .sort()
                  .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
              )
            : v;
      expect(JSON.stringify(sortKeys(parsed))).toBe(text);
      const { signature, ...body } = parsed;
      const signed = nobleSha256(bytesOf(JSON.stringify(sortKeys(body))));
      const key = keys[parsed.enforcer ?? parsed.agent]!;
      expect(ed25519.verify(Buffer.from(signature.value, 'base64url'), signed, key)).toBe(true);
    }
  });
});

/** A changed value of the same shape, so the strict reader accepts it and the signature must fail. */
function tamper(value: unknown): unknown {
  if (typeof value === 'number') return value + 1;
  if (value === null) return 'a'.repeat(64);
  if (typeof value === 'string') {
    if (/^I[0-9a-f]{64}$/.test(value)) return delegationGolden.identities.alice.identifier;
    if (/^[0-9a-f]+$/.test(value)) return value.slice(0, -1) + (value.endsWith('0') ? '1' : '0');
    if (value.length > 40) {
      // base64url: change one character in the middle.
      const at = Math.floor(value.length / 2);
      return value.slice(0, at) + (value[at] === 'A' ? 'B' : 'A') + value.slice(at + 1);
    }
    return `${value}x`;
  }
  if (Array.isArray(value)) return [...(value as unknown[]), 'extra'];
  if (typeof value === 'object') {
    const o = value as Record<string, unknown>;
    const [k] = Object.keys(o).sort();
    return { ...o, [k!]: tamper(o[k!]) };
  }
  return value;
}

function tamperedTexts(text: string): [string, string][] {
  const record = JSON.parse(text) as Record<string, unknown>;
  return Object.keys(record).map((key) => [
    key,
    canonicalizeJson({ ...record, [key]: tamper(record[key]) }),
  ]);
}

describe('tampering', () => {
  it('of any invocation field (and nested report field) fails verification', () => {
    for (const source of [golden.invocation.text, golden.nextInvocation.text]) {
      for (const [key, text] of tamperedTexts(source)) {
        expect(
          codeOf(() => invocationOf(text)),
          key,
        ).not.toBe('no error');
      }
    }
  });

  it('of any field of a record the enforcer signs fails verification', () => {
    const first = invocationOf(golden.invocation.text);
    const second = invocationOf(golden.nextInvocation.text);
    for (const [name, about] of [
      ['decision', first],
      ['escalation', second],
      ['outcome', first],
      ['lease', first],
      ['trace', second],
    ] as const) {
      for (const [key, text] of tamperedTexts(golden[name].text)) {
        expect(
          codeOf(() => verifyEnforcerRecord(bytesOf(text), { enforcers, invocation: about })),
          `${name}.${key}`,
        ).not.toBe('no error');
      }
    }
  });

  it('any flipped byte of an invocation fails (property)', () => {
    const bytes = bytesOf(golden.invocation.text);
    fc.assert(
      fc.property(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 }), (at, mask) => {
        const copy = bytes.slice();
        copy[at] = copy[at]! ^ mask;
        expect(codeOf(() => verifyInvocation(copy, { authorities }))).not.toBe('no error');
      }),
      { numRuns: 300 },
    );
  });

  it('a decision bound to another invocation, or with other disclosed arguments, is a mismatch', () => {
    const second = invocationOf(golden.nextInvocation.text);
    expect(
      codeOf(() =>
        verifyEnforcerRecord(bytesOf(golden.decision.text), { enforcers, invocation: second }),
      ),
    ).toBe('ERR_AUDIT_RECORD_MISMATCH');
  });

  it('an untrusted enforcer, a missing signature, a non-canonical spelling, an unknown member are refused', () => {
    expect(
      codeOf(() => verifyEnforcerRecord(bytesOf(golden.decision.text), { enforcers: new Map() })),
    ).toBe('ERR_AUDIT_SIGNER_UNTRUSTED');
    const record = JSON.parse(golden.invocation.text) as Record<string, unknown>;
    const unsigned = Object.fromEntries(Object.entries(record).filter(([k]) => k !== 'signature'));
    expect(codeOf(() => invocationOf(canonicalizeJson(unsigned)))).toBe(
      'ERR_AUDIT_SIGNATURE_MISSING',
    );
    expect(codeOf(() => invocationOf(` ${golden.invocation.text}`))).toBe(
      'ERR_AUDIT_RECORD_MALFORMED',
    );
    const reordered = Object.fromEntries(Object.entries(record).reverse());
    expect(codeOf(() => invocationOf(JSON.stringify(reordered)))).toBe(
      'ERR_AUDIT_RECORD_MALFORMED',
    );
    expect(codeOf(() => invocationOf(canonicalizeJson({ ...record, extra: 1 })))).toBe(
      'ERR_AUDIT_RECORD_MALFORMED',
    );
    expect(codeOf(() => parseAuditRecord(Uint8Array.of(0xff, 0xfe)))).toBe(
      'ERR_AUDIT_RECORD_MALFORMED',
    );
    // A record signed by another agent's key but naming carol: the attestation's subject is not carol.
    const bob = JSON.parse(golden.invocation.text) as Record<string, unknown>;
    bob.attestation = Buffer.from(
      fromHex(delegationGolden.identities.bob.credentialKeyAttestation),
    ).toString('base64url');
    expect(codeOf(() => invocationOf(canonicalizeJson(bob)))).toBe('ERR_AUDIT_SIGNER_MISMATCH');
  });

  it('a signature value is accepted exactly when it is canonical base64url of 64 bytes (property)', () => {
    const record = JSON.parse(golden.invocation.text) as Record<string, unknown>;
    const given = record.signature as { keyType: string; value: string };
    const alphabet = Array.from(
      'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/ ',
    );
    const value = fc.oneof(
      // Near misses: a valid value with one character changed, cut or added.
      fc
        .tuple(fc.nat(90), fc.constantFrom(...alphabet), fc.constantFrom('set', 'cut', 'add'))
        .map(([at, c, how]) => {
          const i = at % given.value.length;
          const v = given.value;
          return how === 'set'
            ? v.slice(0, i) + c + v.slice(i + 1)
            : how === 'cut'
              ? v.slice(0, i) + v.slice(i + 1)
              : v.slice(0, i) + c + v.slice(i);
        }),
      // Every possible last character (its spare bits must be zero).
      fc.constantFrom(...alphabet).map((c) => given.value.slice(0, 85) + c),
      fc
        .uint8Array({ minLength: 62, maxLength: 66 })
        .map((b) => Buffer.from(b).toString('base64url')),
      fc.string({ unit: fc.constantFrom(...alphabet), minLength: 84, maxLength: 88 }),
    );
    fc.assert(
      fc.property(value, (v) => {
        const decoded = Buffer.from(v, 'base64url');
        const canonical64 =
          /^[A-Za-z0-9_-]*$/.test(v) &&
          decoded.length === 64 &&
          decoded.toString('base64url') === v;
        const text = canonicalizeJson({ ...record, signature: { ...given, value: v } });
        const code = codeOf(() => parseAuditRecord(bytesOf(text)));
        expect(code).toBe(canonical64 ? 'no error' : 'ERR_AUDIT_RECORD_MALFORMED');
      }),
      { numRuns: 3000 },
    );
  });

  it('a chain not valid at the record time fails; the same record verifies at its own time', () => {
    const expired = delegationGolden.chains[2]!.expiresAt;
    expect(
      codeOf(() =>
        verifyInvocation(bytesOf(golden.invocation.text), { authorities, nowSeconds: expired }),
      ),
    ).toBe('ERR_DELEGATION_EXPIRED');
    expect(invocationOf(golden.invocation.text).record.issuedAt).toBe(RECORDS_AT);
  });
});

describe('an invocation naming its chain by hash (mandate/invocation/v2) and its chain record', () => {
  const chain = fromHex(delegationGolden.chains[2]!.bytes);
  const bobChain = fromHex(delegationGolden.chains[1]!.bytes);
  const byHash = bytesOf(golden.invocationByHash.text);

  it('verifies with the chain given or logged, binds it by hash, and needs it', () => {
    const verified = verifyInvocation(byHash, { authorities, chain });
    expect(verified.record.type).toBe(CHAIN_REF_INVOCATION_RECORD_TYPE);
    expect(verified.hash).toBe(golden.invocationByHash.hash);
    expect(verified.chainHash).toBe(chainHashOf(chain));
    expect(verified.record.previous).toBe(golden.nextInvocation.hash);
    expect(verified.chain.actor).toBe(golden.agent);
    const logged = new Map([[chainHashOf(chain), chain]]);
    expect(verifyInvocation(byHash, { authorities, loggedChains: logged }).hash).toBe(
      verified.hash,
    );
    expect(codeOf(() => verifyInvocation(byHash, { authorities }))).toBe('ERR_AUDIT_CHAIN_UNKNOWN');
    expect(codeOf(() => verifyInvocation(byHash, { authorities, chain: bobChain }))).toBe(
      'ERR_AUDIT_CHAIN_MISMATCH',
    );
    // The old form carries its chain and ignores one given beside it.
    const first = verifyInvocation(bytesOf(golden.invocation.text), {
      authorities,
      chain: bobChain,
    });
    expect(first.record.type).toBe(INVOCATION_RECORD_TYPE);
    expect(first.chainHash).toBe(verified.chainHash);
  });

  it('its chain record verifies as the enforcement point signed it, for the invocations naming it', () => {
    const invocation = verifyInvocation(byHash, { authorities, chain });
    const record = verifyEnforcerRecord(bytesOf(golden.chainRecord.text), {
      enforcers,
      invocation,
    });
    expect(record.record.type).toBe(CHAIN_RECORD_TYPE);
    expect(record.hash).toBe(golden.chainRecord.hash);
    expect(record.record.type === CHAIN_RECORD_TYPE && record.record.chainHash).toBe(
      invocation.chainHash,
    );
    const bobInvocation = invocationOf(golden.invocation.text);
    expect(bobInvocation.chainHash).toBe(invocation.chainHash);
  });

  it('any field of either changed fails verification', () => {
    for (const [key, text] of tamperedTexts(golden.invocationByHash.text))
      expect(
        codeOf(() => verifyInvocation(bytesOf(text), { authorities, chain })),
        key,
      ).not.toBe('no error');
    for (const [key, text] of tamperedTexts(golden.chainRecord.text))
      expect(
        codeOf(() => verifyEnforcerRecord(bytesOf(text), { enforcers })),
        key,
      ).not.toBe('no error');
  });
});

describe('signInvocation', () => {
  it('signs a fresh nonce each time; arguments only as their digest; the signer is the chain actor', async () => {
    const carol = goldenParty('carol');
    const chain = fromHex(delegationGolden.chains[2]!.bytes);
    const sign = () =>
      signInvocation(carol.vault, carol.issuer, {
        chain,
        tool: 'issue_refund',
        args: { secret: 'never in the record' },
        nowSeconds: RECORDS_AT,
      });
    const [a, b] = await Promise.all([sign(), sign()]);
    expect(a.record.nonce).not.toBe(b.record.nonce);
    expect(new TextDecoder().decode(a.bytes)).not.toContain('never in the record');
    expect(a.record.server).toBeNull();
    expect(auditRecordHash(a.bytes)).toBe(a.hash);
    expect(a.record.type).toBe(CHAIN_REF_INVOCATION_RECORD_TYPE);
    expect(verifyInvocation(a.bytes, { authorities, chain }).agent).toBe(carol.identity.identifier);
    // bob's chain presented with carol's signature: the chain's actor is not the record's agent.
    const bobChain = fromHex(delegationGolden.chains[1]!.bytes);
    const wrong = await signInvocation(carol.vault, carol.issuer, {
      chain: bobChain,
      tool: 'issue_refund',
      args: {},
      nowSeconds: RECORDS_AT,
    });
    expect(codeOf(() => verifyInvocation(wrong.bytes, { authorities, chain: bobChain }))).toBe(
      'ERR_CHAIN_PRESENTER_MISMATCH',
    );
  });

  it('checks what it signs as the reader does, whatever it wrote just before (digests, nonce, signature)', async () => {
    const carol = goldenParty('carol');
    const chain = fromHex(delegationGolden.chains[2]!.bytes);
    // A vault that signs now, and ones whose signature is a byte too long or too short.
    const seed = delegationGolden.identities.carol.credentialKeySeed;
    const carolKey = ed25519KeyPairFromSeed(fromHex(seed));
    class NowVault extends SeedVault {
      constructor(readonly give: (message: Uint8Array) => Uint8Array) {
        super(seed);
      }
      signNow(_keyId: string, message: Uint8Array): Uint8Array {
        return this.give(message);
      }
    }
    const good = new NowVault((m) => signEd25519(carolKey.secretKey, m));
    const signer = new InvocationSigner(good, carol.issuer);
    const first = await signer.sign({
      chain,
      tool: 'issue_refund',
      args: {},
      nowSeconds: RECORDS_AT,
    });
    const signed = await signer.sign({
      chain,
      tool: 'issue_refund',
      args: { a: 1 },
      nowSeconds: RECORDS_AT,
    });
    expect(signed.record.previous).toBe(first.hash);
    expect(verifyInvocation(signed.bytes, { authorities, chain }).agent).toBe(
      carol.identity.identifier,
    );
    // Each member the signer wrote just now, spelt wrong, is refused by the same check.
    const record = JSON.parse(new TextDecoder().decode(signed.bytes)) as Record<string, unknown>;
    const sig = record.signature as { keyType: string; value: string };
    for (const [member, value] of [
      ['argumentsDigest', signed.record.argumentsDigest.toUpperCase()],
      ['argumentsDigest', `${signed.record.argumentsDigest}0`],
      ['previous', first.hash.slice(1)],
      ['nonce', signed.record.nonce.toUpperCase()],
      ['nonce', `${signed.record.nonce}00`],
      ['signature', { ...sig, value: `${sig.value.slice(0, 85)}B` }],
      ['signature', { ...sig, value: sig.value.slice(1) }],
    ] as const) {
      const text = canonicalizeJson({ ...record, [member]: value });
      expect(
        codeOf(() => parseAuditRecord(bytesOf(text))),
        member,
      ).toBe('ERR_AUDIT_RECORD_MALFORMED');
    }
    for (const length of [63, 65]) {
      const wrong = new NowVault(() => new Uint8Array(length).fill(1));
      let code = 'no error';
      try {
        await new InvocationSigner(wrong, carol.issuer).sign({
          chain,
          tool: 'issue_refund',
          args: {},
          nowSeconds: RECORDS_AT,
        });
      } catch (error) {
        code = isMandateError(error) ? error.code : 'other';
      }
      expect(code, `${length} bytes`).toBe('ERR_AUDIT_RECORD_MALFORMED');
    }
  });

  it('refuses values outside the record bounds with a typed error', async () => {
    const carol = goldenParty('carol');
    const chain = fromHex(delegationGolden.chains[2]!.bytes);
    let code = 'no error';
    try {
      await signInvocation(carol.vault, carol.issuer, {
        chain,
        tool: 'x'.repeat(300),
        args: {},
        nowSeconds: RECORDS_AT,
      });
    } catch (error) {
      code = isMandateError(error) ? error.code : 'other';
    }
    expect(code).toBe('ERR_AUDIT_RECORD_MALFORMED');
  });
});

describe('EnforcerSigner', () => {
  it("gives each record's hash when read: of the bytes as signed, whatever is done to them after", async () => {
    const enforcer = goldenParty('authority');
    const signer = new EnforcerSigner(enforcer.vault, enforcer.issuer);
    const decide = (invocation: string) =>
      signer.signDecision({
        invocation,
        agent: golden.agent,
        decision: 'allow',
        lock: null,
        code: null,
        reasons: [],
        policies: ['small-refunds'],
        bundle: 'b'.repeat(64),
        escalation: null,
        approval: null,
        decidedAt: RECORDS_AT,
      });
    const read = await decide(golden.invocation.hash);
    const expected = auditRecordHash(read.bytes);
    expect(read.hash).toBe(expected);
    expect(read.hash).toBe(expected);
    // Bytes changed before the hash was first read: the hash is still the signed record's.
    const changed = await decide(golden.invocation.hash);
    const signedBytes = changed.bytes.slice();
    changed.bytes[2] = changed.bytes[2]! ^ 1;
    expect(changed.hash).toBe(auditRecordHash(signedBytes));
    expect(changed.hash).toBe(expected);
    // Serialized as a plain signed record: bytes, record and hash.
    const json = JSON.parse(JSON.stringify(read)) as Record<string, unknown>;
    expect(Object.keys(json).sort()).toEqual(['bytes', 'hash', 'record']);
    expect(json['hash']).toBe(expected);
    const outcome = await signer.signOutcome({
      invocation: golden.invocation.hash,
      agent: golden.agent,
      status: 'ok',
      resultDigest: jsonDigest({ refunded: 40 }),
      error: null,
      leases: [],
      completedAt: RECORDS_AT,
    });
    expect(outcome.hash).toBe(auditRecordHash(outcome.bytes));
    expect(verifyEnforcerRecord(outcome.bytes, { enforcers }).hash).toBe(outcome.hash);
  });
});
