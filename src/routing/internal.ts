// Shared by the layers above (credentials, channel, cli), not part of the package's API:
// envelope codecs and limits, route checks, the relay address prefix, TCP peer parsing, listen
// errors (the node's HTTP servers name a taken port as the transport does). See
// docs/architecture.md, "Public API and internal barrels".
export { checkRoute } from './address.js';
export { MAX_PAYLOAD_BYTES, decodeEnvelope, encodeEnvelopeHead } from './envelope.js';
export { RELAY_PREFIX } from './route-text.js';
export { listenError, parseTcpPeer } from './tcp-transport.js';
