import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import {
  decodeCbor,
  encodeCbor,
  expectArray,
  expectBytes,
  expectUint,
  type CborValue,
} from '../encoding/index.js';
import { expectCode } from '../../test/helpers/errors.js';
import {
  isValidAddress,
  localAddress,
  stepRoute,
  prependAddress,
  type Address,
  type Route,
} from './address.js';
import {
  decodeEnvelope,
  encodeEnvelope,
  encodeEnvelopeHead,
  MAX_ENVELOPE_BYTES,
  MAX_PAYLOAD_BYTES,
  type Envelope,
} from './envelope.js';

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

/*
 * The reference: the envelope through the generic strict CBOR codec, as the spec defines it
 * (docs/spec/routing.md). The envelope codec is written out by hand for speed; it must produce
 * and accept exactly what this does.
 */
const CODE = 'ERR_ENVELOPE_MALFORMED';
const referenceEncode = (e: Envelope): Uint8Array =>
  encodeCbor([
    1,
    e.onwardRoute.map((a) => [a.type, a.value]),
    e.returnRoute.map((a) => [a.type, a.value]),
    e.payload,
  ]);
function referenceRoute(value: CborValue | undefined): Route {
  return expectArray(value ?? null, CODE, 'route', 0, 16).map((item) => {
    const pair = expectArray(item, CODE, 'address', 2, 2);
    const address = { type: expectUint(pair[0], CODE, 'type', 255), value: pair[1] };
    if (typeof address.value !== 'string') throw new Error('not text');
    if (!isValidAddress(address as Address)) throw new Error('invalid address');
    return address as Address;
  });
}
/** The decoded envelope, or undefined where the reference rejects the bytes. */
function referenceDecode(bytes: Uint8Array): Envelope | undefined {
  try {
    const top = expectArray(
      decodeCbor(bytes, { errorCode: CODE, maxBytes: MAX_ENVELOPE_BYTES, maxDepth: 4 }),
      CODE,
      'envelope',
      4,
      4,
    );
    if (expectUint(top[0], CODE, 'version') !== 1) return undefined;
    const payload = expectBytes(top[3], CODE, 'payload');
    if (payload.byteLength > MAX_PAYLOAD_BYTES) return undefined;
    return { onwardRoute: referenceRoute(top[1]), returnRoute: referenceRoute(top[2]), payload };
  } catch {
    return undefined;
  }
}
/** What decodeEnvelope makes of `bytes`, as a plain value for comparison. */
function ours(bytes: Uint8Array): Envelope | undefined {
  try {
    const e = decodeEnvelope(bytes);
    return { ...e, payload: e.payload.slice() };
  } catch (error) {
    expect(isMandateError(error, CODE)).toBe(true);
    return undefined;
  }
}

/** Values shaped almost like envelopes: wrong versions, types, texts, counts and extra items. */
const arbNearAddress: fc.Arbitrary<CborValue> = fc.oneof(
  fc.tuple(fc.integer({ min: 0, max: 300 }), fc.string({ minLength: 0, maxLength: 30 })),
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.stringMatching(/^[\x21-\x7e]{1,40}$/)),
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.string({ unit: 'binary', maxLength: 4 })),
  fc.tuple(fc.integer({ min: -3, max: 30 }), fc.uint8Array({ maxLength: 3 })),
  fc.tuple(fc.nat(30), fc.stringMatching(/^[\x21-\x7e]{250,260}$/)),
  fc.tuple(fc.nat(30), fc.constant('a'), fc.nat(3)),
);
const arbNearEnvelope: fc.Arbitrary<CborValue> = fc.oneof(
  fc.tuple(
    fc.oneof(fc.constant(1), fc.integer({ min: -2, max: 300 }), fc.constant(2n ** 40n)),
    fc.array(arbNearAddress, { maxLength: 18 }),
    fc.array(arbNearAddress, { maxLength: 3 }),
    fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.string({ maxLength: 3 }), fc.constant(null)),
  ),
  fc.tuple(
    fc.constant(1),
    fc.array(arbNearAddress, { maxLength: 2 }),
    fc.constant<CborValue[]>([]),
  ),
  fc.array(fc.constant(1), { maxLength: 6 }),
);

const randomPayload = (length: number): Uint8Array =>
  Uint8Array.from({ length }, (_, i) => (i * 131 + 7) & 0xff);

describe('envelope codec against the generic CBOR codec', () => {
  it('encodes exactly what the generic codec encodes, after the zero headroom asked for', () => {
    fc.assert(
      fc.property(arbEnvelope, fc.nat(8), (envelope, headroom) => {
        const reference = referenceEncode(envelope);
        expect(encodeEnvelope(envelope)).toStrictEqual(reference);
        const framed = encodeEnvelope(envelope, { headroom });
        expect(framed.subarray(0, headroom)).toStrictEqual(new Uint8Array(headroom));
        expect(framed.subarray(headroom)).toStrictEqual(reference);
      }),
    );
    // Payload lengths at each head size: 1, 2, 3 and 5 bytes.
    for (const length of [0, 23, 24, 255, 256, 65535, 65536, MAX_PAYLOAD_BYTES]) {
      const envelope = { onwardRoute: [], returnRoute: [], payload: randomPayload(length) };
      const encoded = Buffer.from(encodeEnvelope(envelope));
      expect(encoded.equals(referenceEncode(envelope))).toBe(true);
    }
  });

  it('encodeEnvelopeHead is the encoding up to the payload: head ‖ payload is the envelope', () => {
    fc.assert(
      fc.property(arbEnvelope, (envelope) => {
        const head = encodeEnvelopeHead(envelope);
        const joined = new Uint8Array(head.byteLength + envelope.payload.byteLength);
        joined.set(head);
        joined.set(envelope.payload, head.byteLength);
        expect(joined).toStrictEqual(encodeEnvelope(envelope));
        expect(joined).toStrictEqual(referenceEncode(envelope));
      }),
    );
    for (const length of [0, 23, 24, 255, 256, 65535, 65536, MAX_PAYLOAD_BYTES]) {
      const envelope = { onwardRoute: [], returnRoute: [], payload: randomPayload(length) };
      const head = encodeEnvelopeHead(envelope);
      expect(Buffer.concat([head, envelope.payload]).equals(referenceEncode(envelope))).toBe(true);
    }
    // The same bounds as encodeEnvelope.
    expectCode(
      () =>
        encodeEnvelopeHead({
          onwardRoute: [],
          returnRoute: [],
          payload: new Uint8Array(MAX_PAYLOAD_BYTES + 1),
        }),
      'ERR_PAYLOAD_TOO_LARGE',
    );
    expectCode(
      () =>
        encodeEnvelopeHead({
          onwardRoute: [{ type: 0, value: 'a b' }],
          returnRoute: [],
          payload: new Uint8Array(1),
        }),
      'ERR_ROUTE_INVALID',
    );
  });

  it('writes every byte of the memory `allocate` gives it', () => {
    fc.assert(
      fc.property(arbEnvelope, fc.nat(8), (envelope, headroom) => {
        let given: Uint8Array | undefined;
        const framed = encodeEnvelope(envelope, {
          headroom,
          allocate: (length) => (given = new Uint8Array(length).fill(0xaa)),
        });
        expect(framed).toBe(given);
        expect(framed.subarray(0, headroom)).toStrictEqual(new Uint8Array(headroom));
        expect(framed.subarray(headroom)).toStrictEqual(referenceEncode(envelope));
      }),
    );
  });

  it('refuses a bad headroom or allocation with ERR_ARGUMENT_INVALID', () => {
    const envelope = { onwardRoute: [], returnRoute: [], payload: new Uint8Array(3) };
    for (const headroom of [-1, 1.5, Number.NaN]) {
      expectCode(() => encodeEnvelope(envelope, { headroom }), 'ERR_ARGUMENT_INVALID');
    }
    expectCode(
      () => encodeEnvelope(envelope, { allocate: (length) => new Uint8Array(length + 1) }),
      'ERR_ARGUMENT_INVALID',
    );
  });

  it('accepts exactly what the generic codec accepts, and decodes it alike', () => {
    const agree = (bytes: Uint8Array): void => {
      expect(ours(bytes)).toEqual(referenceDecode(bytes));
    };
    fc.assert(
      fc.property(arbNearEnvelope, (value) => {
        agree(encodeCbor(value));
      }),
      {
        numRuns: 2000,
      },
    );
    fc.assert(
      fc.property(
        arbEnvelope,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 3,
        }),
        (envelope, edits) => {
          const bytes = encodeEnvelope(envelope);
          for (const [at, byte] of edits) bytes[at % bytes.length] = byte;
          agree(bytes);
        },
      ),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(
        arbEnvelope,
        fc.nat(),
        fc.uint8Array({ maxLength: 3 }),
        (envelope, cut, extra) => {
          const bytes = encodeEnvelope(envelope);
          agree(bytes.subarray(0, cut % (bytes.length + 1)));
          const longer = new Uint8Array(bytes.length + extra.length);
          longer.set(bytes);
          longer.set(extra, bytes.length);
          agree(longer);
        },
      ),
    );
    // Non-shortest heads of every kind the envelope has.
    for (const hex of [
      '98 01 01 80 80 40', // array(4) with a 1-byte count
      '84 18 01 80 80 40', // version with a 1-byte argument
      '84 01 98 00 80 40', // route count
      '84 01 81 82 18 00 61 61 80 40', // address type
      '84 01 81 82 00 78 01 61 80 40', // address text length
      '84 01 80 80 58 00', // payload length
      '84 01 80 80 59 00 01 00', // payload length, 2 bytes
      '84 01 80 80 5f ff', // indefinite payload
      '84 01 80 80 40 00', // trailing byte
      '84 01 80 80 41', // payload cut short
    ]) {
      const bytes = new Uint8Array(Buffer.from(hex.replaceAll(' ', ''), 'hex'));
      expect(referenceDecode(bytes)).toBeUndefined();
      expectCode(() => decodeEnvelope(bytes), CODE);
    }
  });

  it('rejects an address text of any length above 255 before reading it', () => {
    for (const length of [256, 70_000, 200_000]) {
      const bytes = encodeCbor([1, [[0, 'a'.repeat(length)]], [], new Uint8Array(0)]);
      expectCode(() => decodeEnvelope(bytes), CODE);
    }
  });

  it('decodes the payload as a view into the bytes, without a copy', () => {
    const bytes = encodeEnvelope({
      onwardRoute: [localAddress('echo')],
      returnRoute: [],
      payload: new Uint8Array([1, 2, 3]),
    });
    const { payload } = decodeEnvelope(bytes);
    expect(payload.buffer).toBe(bytes.buffer);
    expect(payload.byteOffset + payload.byteLength).toBe(bytes.byteOffset + bytes.byteLength);
    expect([...payload]).toEqual([1, 2, 3]);
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
