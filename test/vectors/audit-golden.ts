// Builds Mandate's golden audit-log vectors from a fixed seed and fixed entries (Ed25519 is
// deterministic), so docs/spec/vectors/audit-log.json can be reproduced by anyone.
import { ed25519KeyPairFromSeed, signEd25519 } from '../../src/crypto/index.js';
import { toHex } from '../../src/encoding/index.js';
import {
  formatCheckpoint,
  formatNoteVerifierKey,
  noteKeyId,
  signCheckpoint,
  type NoteSigner,
} from '../../src/audit/checkpoint.js';
import {
  combineSubtreeNodes,
  CompactRange,
  consistencyProofRanges,
  hashLeaf,
  inclusionProofRanges,
  subtreeNodes,
} from '../../src/audit/merkle.js';

/** A note signer from a raw Ed25519 seed: for fixed test keys only (real keys live in vaults). */
export function seedNoteSigner(name: string, seed: Uint8Array): NoteSigner {
  const pair = ed25519KeyPairFromSeed(seed);
  return {
    name,
    keyId: noteKeyId(name, pair.publicKey),
    publicKey: pair.publicKey,
    sign: (message) => Promise.resolve(signEd25519(pair.secretKey, message)),
  };
}

export const GOLDEN_ORIGIN = 'mandate.example/audit/golden';
export const GOLDEN_SEED = new Uint8Array(32).fill(0x42);
export const GOLDEN_ENTRIES = Array.from({ length: 7 }, (_, i) => `{"record":${i}}`);

export async function buildAuditGoldenVectors() {
  const signer = seedNoteSigner(GOLDEN_ORIGIN, GOLDEN_SEED);
  const entries = GOLDEN_ENTRIES.map((e) => new TextEncoder().encode(e));
  const leafHashes = entries.map(hashLeaf);
  const nodes = new Map<string, Uint8Array>();
  const range = new CompactRange();
  leafHashes.forEach((leaf, i) => {
    nodes.set(`0/${i}`, leaf);
    range.append(leaf, (node, hash) => nodes.set(`${node.level}/${node.index}`, hash));
  });
  const hashOf = (start: number, end: number): Uint8Array =>
    combineSubtreeNodes(
      subtreeNodes({ start, end }).map((n) => nodes.get(`${n.level}/${n.index}`)!),
    );
  const checkpoint = { origin: GOLDEN_ORIGIN, treeSize: 7, rootHash: range.root(), extensions: [] };
  const older = { origin: GOLDEN_ORIGIN, treeSize: 3, rootHash: hashOf(0, 3), extensions: [] };
  return {
    seed: toHex(GOLDEN_SEED),
    origin: GOLDEN_ORIGIN,
    publicKey: toHex(signer.publicKey),
    keyId: signer.keyId.toString(16).padStart(8, '0'),
    verifierKey: formatNoteVerifierKey({
      name: signer.name,
      keyId: signer.keyId,
      publicKey: signer.publicKey,
    }),
    entries: GOLDEN_ENTRIES,
    leafHashes: leafHashes.map(toHex),
    roots: Array.from({ length: 7 }, (_, i) => toHex(hashOf(0, i + 1))),
    checkpointText: formatCheckpoint(checkpoint),
    signedCheckpoint: await signCheckpoint(checkpoint, [signer]),
    olderSignedCheckpoint: await signCheckpoint(older, [signer]),
    inclusionProof: {
      leafIndex: 3,
      treeSize: 7,
      proof: inclusionProofRanges(3, 7).map((r) => toHex(hashOf(r.start, r.end))),
    },
    consistencyProof: {
      firstSize: 3,
      secondSize: 7,
      proof: consistencyProofRanges(3, 7).map((r) => toHex(hashOf(r.start, r.end))),
    },
  };
}
