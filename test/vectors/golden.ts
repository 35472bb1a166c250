// Builds Mandate's golden identity vectors from fixed seeds (Ed25519 is deterministic), so the
// bytes in docs/spec/vectors/identity-rotation.json can be reproduced by anyone.
import { encodeCbor, toHex } from '../../src/encoding/index.js';
import {
  ed25519KeyPairFromSeed,
  sha256,
  signEd25519,
  x25519PublicKey,
} from '../../src/crypto/index.js';
import {
  encodeChangeData,
  encodeChangeHistory,
  encodeVersionedData,
  type EncodedChange,
} from '../../src/identity/codec.js';

const seed = (byte: number): Uint8Array => new Uint8Array(32).fill(byte);

export function buildGoldenVectors() {
  const k0 = ed25519KeyPairFromSeed(seed(0x01));
  const k1 = ed25519KeyPairFromSeed(seed(0x02));
  const credentialKey = ed25519KeyPairFromSeed(seed(0x03));
  const channelPublic = x25519PublicKey(seed(0x04));
  const t0 = 1_767_225_600; // 2026-01-01T00:00:00Z
  const t1 = t0 + 86_400;

  const data0 = encodeVersionedData(
    1,
    encodeChangeData({
      previousChange: null,
      primaryPublicKey: { keyType: 'ed25519', bytes: k0.publicKey },
      revokeAllPurposeKeys: false,
      attestationsValidFrom: t0,
      attestationsValidUntil: t0 + 315_360_000,
    }),
  );
  const hash0 = sha256(data0);
  const change0: EncodedChange = {
    data: data0,
    signature: { keyType: 'ed25519', bytes: signEd25519(k0.secretKey, hash0) },
    previousSignature: null,
  };
  const data1 = encodeVersionedData(
    1,
    encodeChangeData({
      previousChange: hash0,
      primaryPublicKey: { keyType: 'ed25519', bytes: k1.publicKey },
      revokeAllPurposeKeys: false,
      attestationsValidFrom: t1,
      attestationsValidUntil: t1 + 315_360_000,
    }),
  );
  const hash1 = sha256(data1);
  const change1: EncodedChange = {
    data: data1,
    signature: { keyType: 'ed25519', bytes: signEd25519(k1.secretKey, hash1) },
    previousSignature: { keyType: 'ed25519', bytes: signEd25519(k0.secretKey, hash1) },
  };
  const attest = (
    publicKey: unknown,
    signer: Uint8Array,
    changeHash: Uint8Array,
    createdAt: number,
  ): Uint8Array => {
    const data = encodeVersionedData(
      2,
      encodeCbor([hash0, changeHash, publicKey as never, createdAt, createdAt + 31_536_000]),
    );
    return encodeCbor([data, [0, [signEd25519(signer, sha256(data))]]]);
  };
  return {
    seeds: {
      primary0: toHex(seed(0x01)),
      primary1: toHex(seed(0x02)),
      credentialKey: toHex(seed(0x03)),
      secureChannelKey: toHex(seed(0x04)),
    },
    identifier: `I${toHex(hash0)}`,
    oneChangeHistory: toHex(encodeChangeHistory([change0])),
    rotatedHistory: toHex(encodeChangeHistory([change0, change1])),
    changeHashes: [toHex(hash0), toHex(hash1)],
    credentialKeyAttestation: toHex(
      attest([1, [[0, [credentialKey.publicKey]]]], k1.secretKey, hash1, t1),
    ),
    secureChannelKeyAttestation: toHex(attest([0, [channelPublic]], k1.secretKey, hash1, t1)),
    attestationBeforeRotation: toHex(
      attest([1, [[0, [credentialKey.publicKey]]]], k0.secretKey, hash0, t0),
    ),
    times: { change0: t0, change1: t1 },
  };
}
