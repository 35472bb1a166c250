import { invalid } from '../core/index.js';
import {
  decodeCbor,
  encodeCbor,
  expectArray,
  expectBytes,
  expectUint,
  type CborValue,
} from '../encoding/index.js';
import { checkRoute, isValidAddress, MAX_ROUTE_HOPS, type Address, type Route } from './address.js';

/**
 * The routing envelope (docs/spec/routing.md): what travels hop by hop. On the wire it is the
 * CBOR array `[1, onward_route, return_route, payload: bstr]`, a route being an array of
 * `[type: uint, value: tstr]`. Nothing else is sent: the connection a message came in on is
 * local knowledge the router adds, so a peer cannot forge it (like Ockam's `local_info`).
 */
export interface Envelope {
  readonly onwardRoute: Route;
  readonly returnRoute: Route;
  readonly payload: Uint8Array;
}

export const ENVELOPE_VERSION = 1;
export const MAX_PAYLOAD_BYTES = 256 * 1024;
/** The payload bound plus room for two full routes (2 × 16 × ~260 bytes) and the heads. */
export const MAX_ENVELOPE_BYTES = MAX_PAYLOAD_BYTES + 16 * 1024;

/** Throws unless the envelope is within bounds: `ERR_ROUTE_INVALID`, `ERR_PAYLOAD_TOO_LARGE`. */
export function checkEnvelope(envelope: Envelope): Envelope {
  checkRoute(envelope.onwardRoute, 'onward route');
  checkRoute(envelope.returnRoute, 'return route');
  if (envelope.payload.byteLength > MAX_PAYLOAD_BYTES) {
    throw invalid(
      'ERR_PAYLOAD_TOO_LARGE',
      `payload is ${envelope.payload.byteLength} bytes, at most ${MAX_PAYLOAD_BYTES} allowed`,
    );
  }
  return envelope;
}

const routeToCbor = (route: Route): CborValue[] => route.map((a) => [a.type, a.value]);

export function encodeEnvelope(envelope: Envelope): Uint8Array {
  checkEnvelope(envelope);
  return encodeCbor([
    ENVELOPE_VERSION,
    routeToCbor(envelope.onwardRoute),
    routeToCbor(envelope.returnRoute),
    envelope.payload,
  ]);
}

const CODE = 'ERR_ENVELOPE_MALFORMED';

function routeFromCbor(value: CborValue | undefined, what: string): Route {
  if (value === undefined) throw invalid(CODE, `${what} is missing`);
  return expectArray(value, CODE, what, 0, MAX_ROUTE_HOPS).map((item, i) => {
    const pair = expectArray(item, CODE, `${what} address ${i}`, 2, 2);
    const type = expectUint(pair[0], CODE, `${what} address ${i} type`, 255);
    const text = pair[1];
    if (typeof text !== 'string') throw invalid(CODE, `${what} address ${i} value must be text`);
    const address: Address = { type, value: text };
    if (!isValidAddress(address)) {
      throw invalid(CODE, `${what} address ${i} value is not 1–255 printable ASCII`);
    }
    return address;
  });
}

/** Strict and bounded: any deviation throws `ERR_ENVELOPE_MALFORMED`, nothing else. */
export function decodeEnvelope(bytes: Uint8Array): Envelope {
  const top = expectArray(
    decodeCbor(bytes, {
      errorCode: CODE,
      what: 'envelope',
      maxBytes: MAX_ENVELOPE_BYTES,
      maxDepth: 4,
    }),
    CODE,
    'envelope',
    4,
    4,
  );
  const version = expectUint(top[0], CODE, 'envelope version');
  if (version !== ENVELOPE_VERSION) {
    throw invalid(CODE, `envelope version \`${version}\` is not ${ENVELOPE_VERSION}`);
  }
  const onwardRoute = routeFromCbor(top[1], 'onward route');
  const returnRoute = routeFromCbor(top[2], 'return route');
  const payload = expectBytes(top[3], CODE, 'payload');
  if (payload.byteLength > MAX_PAYLOAD_BYTES) {
    throw invalid(CODE, `payload is ${payload.byteLength} bytes, at most ${MAX_PAYLOAD_BYTES}`);
  }
  return { onwardRoute, returnRoute, payload };
}
