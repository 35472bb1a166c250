import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isMandateError } from '../core/index.js';
import { encodeCbor } from '../encoding/index.js';
import {
  decodeBundleContent,
  encodeBundleContent,
  MAX_BUNDLE_BYTES,
  MAX_BUNDLE_TEXT_BYTES,
} from './bundle.js';
import { codeOf } from '../../test/helpers/errors.js';

const content = fc
  .record({
    issuer: fc
      .uint8Array({ minLength: 32, maxLength: 32 })
      .map((b) => `I${Buffer.from(b).toString('hex')}`),
    version: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    createdAt: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    policies: fc.string({ unit: 'grapheme', maxLength: 200 }),
    schema: fc.string({ unit: 'grapheme', maxLength: 200 }),
    catalog: fc.option(fc.string({ unit: 'grapheme', maxLength: 200 }), { nil: undefined }),
  })
  .map(({ catalog, ...rest }) => (catalog === undefined ? rest : { ...rest, catalog }));

describe('bundle content codec', () => {
  it('decodes what it encodes, field for field, and encodes it back to the same bytes', () => {
    fc.assert(
      fc.property(content, (c) => {
        const bytes = encodeBundleContent(c);
        const decoded = decodeBundleContent(bytes);
        expect(decoded).toEqual(c);
        expect(encodeBundleContent(decoded)).toEqual(bytes);
      }),
      { seed: 10, numRuns: 300 },
    );
  });

  it('refuses any other shape with a typed error, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeBundleContent(bytes);
        } catch (error) {
          expect(isMandateError(error)).toBe(true);
        }
      }),
      { seed: 10, numRuns: 500 },
    );
    const issuer = new Uint8Array(32);
    const decode = (fields: unknown[]) => () =>
      decodeBundleContent(encodeCbor(fields as Parameters<typeof encodeCbor>[0][]));
    expect(codeOf(decode([issuer, 1, 0, 'p', 's']))).toBe('accepted');
    expect(codeOf(decode([issuer, 0, 0, 'p', 's']))).toBe('ERR_BUNDLE_MALFORMED');
    expect(codeOf(decode([issuer.subarray(1), 1, 0, 'p', 's']))).toBe('ERR_BUNDLE_MALFORMED');
    expect(codeOf(decode([issuer, 1, 0, new Uint8Array([1]), 's']))).toBe('ERR_BUNDLE_MALFORMED');
    // A sixth field is the catalog (text); a seventh, or a catalog that is not text, is refused.
    expect(codeOf(decode([issuer, 1, 0, 'p', 's', 'c', 'extra']))).toBe('ERR_BUNDLE_MALFORMED');
    expect(codeOf(decode([issuer, 1, 0, 'p', 's', 1]))).toBe('ERR_BUNDLE_MALFORMED');
    expect(codeOf(decode([issuer, 1, 0, 'p', ['nested']]))).toBe('ERR_BUNDLE_MALFORMED');
    expect(codeOf(decode([issuer, 1, 0, 'x'.repeat(MAX_BUNDLE_TEXT_BYTES + 1), 's']))).toBe(
      'ERR_BUNDLE_TOO_LARGE',
    );
    expect(codeOf(() => decodeBundleContent(new Uint8Array(MAX_BUNDLE_BYTES + 1)))).toBe(
      'ERR_BUNDLE_TOO_LARGE',
    );
  });

  it('checks what it is asked to encode', () => {
    const good = {
      issuer: `I${'ab'.repeat(32)}`,
      version: 1,
      createdAt: 0,
      policies: '',
      schema: '',
    };
    expect(codeOf(() => encodeBundleContent(good))).toBe('accepted');
    for (const bad of [
      { issuer: 'alice' },
      { issuer: `I${'AB'.repeat(32)}` },
      { version: 0 },
      { version: 1.5 },
      { createdAt: -1 },
    ])
      expect(codeOf(() => encodeBundleContent({ ...good, ...bad }))).toBe('ERR_ARGUMENT_INVALID');
    expect(
      codeOf(() =>
        encodeBundleContent({ ...good, schema: 'é'.repeat(MAX_BUNDLE_TEXT_BYTES / 2 + 1) }),
      ),
    ).toBe('ERR_BUNDLE_TOO_LARGE');
  });
});
