import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { isMandateError } from '../core/index.js';
import { encodeCbor } from '../encoding/index.js';
import {
  chunksOf,
  decodeEgressMessage,
  EGRESS_CHUNK_BYTES,
  EgressOp,
  encodeEgressMessage,
  type EgressMessage,
} from './egress-protocol.js';
import { codeOf } from '../../test/helpers/errors.js';

const id = new Uint8Array(16).fill(9);

describe('the egress protocol', () => {
  it('round-trips every message type', () => {
    const messages: EgressMessage[] = [
      {
        op: EgressOp.request,
        id,
        method: 'POST',
        authority: 'api.example.com',
        path: '/v1/x?y=1',
        headers: [
          ['content-type', 'application/json'],
          ['x', ''],
        ],
        chunks: 2,
      },
      { op: EgressOp.chunk, id, index: 1, bytes: new Uint8Array([1, 2, 3]) },
      { op: EgressOp.response, id, status: 201, headers: [['set-cookie', 'a=b']] },
      { op: EgressOp.end, id, chunks: 0 },
      { op: EgressOp.refused, id, code: 'ERR_PROXY_HOST_NOT_BOUND' },
    ];
    for (const message of messages)
      expect(decodeEgressMessage(encodeEgressMessage(message))).toEqual(message);
  });

  it.each([
    ['a wrong version', [2, 3, id, 0]],
    ['an unknown type', [1, 9, id, 0]],
    ['a short id', [1, 3, new Uint8Array(15), 0]],
    ['a wrong length', [1, 3, id, 0, 0]],
    ['a status out of range', [1, 2, id, 99, []]],
    ['a header that is no pair', [1, 2, id, 200, [['a']]]],
    ['a header name that is no text', [1, 2, id, 200, [[1, 'a']]]],
    ['an oversized chunk', [1, 1, id, 0, new Uint8Array(EGRESS_CHUNK_BYTES + 1)]],
    ['a long refusal code', [1, 4, id, 'E'.repeat(65)]],
    ['too many headers', [1, 2, id, 200, Array.from({ length: 129 }, () => ['a', 'b'])]],
  ])('refuses %s', (_, value) => {
    expect(codeOf(() => decodeEgressMessage(encodeCbor(value as never)))).toBe(
      'ERR_PROXY_MALFORMED',
    );
  });

  it('decodes any bytes or refuses them with ERR_PROXY_MALFORMED (fuzz)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => {
        try {
          decodeEgressMessage(bytes);
        } catch (error) {
          expect(isMandateError(error, 'ERR_PROXY_MALFORMED')).toBe(true);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('cuts bodies into chunks of at most 48 KiB', () => {
    expect(chunksOf(new Uint8Array(0))).toEqual([]);
    const chunks = chunksOf(new Uint8Array(EGRESS_CHUNK_BYTES * 2 + 1));
    expect(chunks.map((c) => c.length)).toEqual([EGRESS_CHUNK_BYTES, EGRESS_CHUNK_BYTES, 1]);
  });
});
