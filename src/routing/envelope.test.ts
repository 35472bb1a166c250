import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import { encodeCbor } from '../encoding/index.js';
import { expectCode } from '../../test/helpers/errors.js';
import { localAddress, stepRoute, prependAddress, type Address } from './address.js';
import { decodeEnvelope, encodeEnvelope, MAX_PAYLOAD_BYTES, type Envelope } from './envelope.js';

const arbAddress: fc.Arbitrary<Address> = fc.record({
  type: fc.integer({ min: 0, max: 255 }),
  value: fc.stringMatching(/^[\x21-\x7e]{1,40}$/),
});
const arbEnvelope: fc.Arbitrary<Envelope> = fc.record({
  onwardRoute: fc.array(arbAddress, { maxLength: 16 }),
  returnRoute: fc.array(arbAddress, { maxLength: 16 }),
  payload: fc.uint8Array({ maxLength: 256 }),
});

describe('envelope codec', () => {
  it('matches the example of docs/spec/routing.md', () => {
    const envelope = {
      onwardRoute: [localAddress('echo')],
      returnRoute: [localAddress('app')],
      payload: new TextEncoder().encode('hi'),
    };
    const hex = '8401818200646563686f81820063617070426869';
    expect(Buffer.from(encodeEnvelope(envelope)).toString('hex')).toBe(hex);
    expect(decodeEnvelope(new Uint8Array(Buffer.from(hex, 'hex')))).toEqual(envelope);
  });

  it('round trips and is canonical', () => {
    fc.assert(
      fc.property(arbEnvelope, (envelope) => {
        const bytes = encodeEnvelope(envelope);
        const decoded = decodeEnvelope(bytes);
        expect(decoded).toEqual(envelope);
        expect(encodeEnvelope(decoded)).toEqual(bytes);
      }),
    );
  });

  it('throws nothing but ERR_ENVELOPE_MALFORMED on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeEnvelope(bytes);
        } catch (error) {
          expect(isMandateError(error, 'ERR_ENVELOPE_MALFORMED')).toBe(true);
        }
      }),
    );
  });

  it('rejects mutated encodings with ERR_ENVELOPE_MALFORMED or decodes them', () => {
    fc.assert(
      fc.property(arbEnvelope, fc.nat(), fc.integer({ min: 0, max: 255 }), (e, at, byte) => {
        const bytes = encodeEnvelope(e);
        bytes[at % bytes.length] = byte;
        try {
          decodeEnvelope(bytes);
        } catch (error) {
          expect(isMandateError(error, 'ERR_ENVELOPE_MALFORMED')).toBe(true);
        }
      }),
    );
  });

  it('rejects wrong versions, shapes, types and values', () => {
    const ok = [1, [[0, 'echo']], [], new Uint8Array(1)];
    expect(decodeEnvelope(encodeCbor(ok)).onwardRoute).toEqual([localAddress('echo')]);
    for (const bad of [
      [2, [[0, 'echo']], [], new Uint8Array(1)],
      [1, [[0, 'echo']], []],
      [1, [[0, 'echo', 1]], [], new Uint8Array(1)],
      [1, [[256, 'echo']], [], new Uint8Array(1)],
      [1, [[0, '']], [], new Uint8Array(1)],
      [1, [[0, 'with space']], [], new Uint8Array(1)],
      [1, [[0, new Uint8Array(2)]], [], new Uint8Array(1)],
      [1, Array.from({ length: 17 }, () => [0, 'a']), [], new Uint8Array(1)],
      [1, [], [], 'text'],
    ]) {
      expectCode(() => decodeEnvelope(encodeCbor(bad)), 'ERR_ENVELOPE_MALFORMED');
    }
  });

  it('bounds payload and routes on encode', () => {
    const big = new Uint8Array(MAX_PAYLOAD_BYTES + 1);
    expectCode(
      () => encodeEnvelope({ onwardRoute: [], returnRoute: [], payload: big }),
      'ERR_PAYLOAD_TOO_LARGE',
    );
    const long = Array.from({ length: 17 }, () => localAddress('a'));
    expectCode(
      () => encodeEnvelope({ onwardRoute: long, returnRoute: [], payload: big }),
      'ERR_ROUTE_INVALID',
    );
    expectCode(
      () =>
        encodeEnvelope({
          onwardRoute: [{ type: 0, value: 'x'.repeat(256) }],
          returnRoute: [],
          payload: new Uint8Array(0),
        }),
      'ERR_ROUTE_INVALID',
    );
    const max = encodeEnvelope({
      onwardRoute: Array.from({ length: 16 }, () => ({ type: 255, value: 'x'.repeat(255) })),
      returnRoute: Array.from({ length: 16 }, () => ({ type: 255, value: 'x'.repeat(255) })),
      payload: new Uint8Array(MAX_PAYLOAD_BYTES),
    });
    expect(decodeEnvelope(max).payload.byteLength).toBe(MAX_PAYLOAD_BYTES);
  });
});

describe('route helpers', () => {
  it('steps and prepends', () => {
    const a = localAddress('a');
    const b = localAddress('b');
    expect(stepRoute([a, b])).toEqual({ next: a, rest: [b] });
    expect(prependAddress(a, [b])).toEqual([a, b]);
    expectCode(() => stepRoute([]), 'ERR_ROUTE_INVALID');
    expectCode(() => localAddress('bad name'), 'ERR_ROUTE_INVALID');
  });
});
