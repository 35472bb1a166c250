import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import { encodeCbor } from '../encoding/index.js';
import { BusTopic } from '../bus/index.js';
import {
  decodeBusAnswer,
  decodeBusRequest,
  encodeBusEnd,
  encodeBusMessageFrames,
  encodeBusRequest,
  FragmentAssembler,
  FRAGMENT_BYTES,
  MAX_ANSWER_BYTES,
  type BusAnswer,
} from './bus-protocol.js';

const onlyInvalid = (decode: () => unknown): void => {
  try {
    decode();
  } catch (error) {
    if (!isMandateError(error, 'ERR_BUS_MESSAGE_INVALID')) throw error;
  }
};

describe('bus frames over a secure channel', () => {
  it('round-trips requests and ends', () => {
    for (const request of [
      { op: 'subscribe', id: 1, topic: BusTopic.denySet, fromSequence: undefined },
      { op: 'subscribe', id: 2 ** 32 - 1, topic: BusTopic.bundles, fromSequence: 12 },
      { op: 'unsubscribe', id: 3 },
    ] as const)
      expect(decodeBusRequest(encodeBusRequest(request))).toEqual(request);
    expect(decodeBusAnswer(encodeBusEnd(9, 'ERR_REVOKED'))).toEqual({
      op: 'end',
      id: 9,
      code: 'ERR_REVOKED',
    });
  });

  it('cuts a long message into pieces that fit a Noise message, and puts it back together', () => {
    const message = new Uint8Array(3 * FRAGMENT_BYTES + 17).map((_, i) => i & 0xff);
    const frames = encodeBusMessageFrames(5, message);
    expect(frames).toHaveLength(4);
    for (const frame of frames) expect(frame.length).toBeLessThanOrEqual(MAX_ANSWER_BYTES);
    expect(Math.max(...frames.map((f) => f.length))).toBeLessThan(65_535 - 1_024);
    const assembler = new FragmentAssembler();
    const pieces = frames.map(decodeBusAnswer);
    const results = pieces.map((p) => (p.op === 'fragment' ? assembler.add(p) : new Uint8Array(0)));
    expect(results.slice(0, 3)).toEqual([undefined, undefined, undefined]);
    expect(results[3]).toEqual(message);
    expect(assembler.pending).toBe(false);
    // A short message is one frame.
    expect(decodeBusAnswer(encodeBusMessageFrames(5, new Uint8Array(3))[0]!)).toEqual({
      op: 'message',
      id: 5,
      message: new Uint8Array(3),
    });
  });

  it('refuses pieces out of turn, of the wrong size, or claiming too many', () => {
    const frames = encodeBusMessageFrames(1, new Uint8Array(2 * FRAGMENT_BYTES + 1)).map(
      decodeBusAnswer,
    ) as Extract<BusAnswer, { op: 'fragment' }>[];
    const assembler = new FragmentAssembler();
    expect(() => assembler.add(frames[1]!)).toThrow(
      expect.objectContaining({ code: 'ERR_BUS_MESSAGE_INVALID' }) as Error,
    );
    assembler.add(frames[0]!);
    expect(() => assembler.add({ ...frames[1]!, count: 4 })).toThrow(
      expect.objectContaining({ code: 'ERR_BUS_MESSAGE_INVALID' }) as Error,
    );
    expect(assembler.pending).toBe(false);
    const bad = [
      [1, 3, 1, 0, 2, new Uint8Array(10)], // a first piece shorter than a piece
      [1, 3, 1, 1, 2, new Uint8Array(0)], // an empty last piece
      [1, 3, 1, 2, 2, new Uint8Array(1)], // index past count
      [1, 3, 1, 0, 1, new Uint8Array(1)], // one piece is a message, not a fragment
      [1, 3, 1, 0, 100_000, new Uint8Array(FRAGMENT_BYTES)], // more pieces than 32 MiB
      [1, 4, 1, 'not a code'],
      [1, 2, 1],
      [2, 2, 1, new Uint8Array(1)],
    ];
    for (const value of bad)
      expect(() => decodeBusAnswer(encodeCbor(value as never)), JSON.stringify(value)).toThrow(
        expect.objectContaining({ code: 'ERR_BUS_MESSAGE_INVALID' }) as Error,
      );
    expect(() => decodeBusRequest(encodeCbor([1, 0, 1, 5, null]))).toThrow(
      expect.objectContaining({ code: 'ERR_BUS_MESSAGE_INVALID' }) as Error,
    );
    expect(() => decodeBusRequest(new Uint8Array(65))).toThrow(
      expect.objectContaining({ code: 'ERR_BUS_MESSAGE_INVALID' }) as Error,
    );
  });

  it('decodes arbitrary bytes to a frame or ERR_BUS_MESSAGE_INVALID, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        onlyInvalid(() => decodeBusRequest(bytes));
        onlyInvalid(() => decodeBusAnswer(bytes));
      }),
      { numRuns: 3_000 },
    );
  });
});
