import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import { fromHex, toHex } from '../encoding/index.js';
import { list, readVectorJson, record, text } from '../../test/helpers/vectors.js';
import {
  combineSubtreeNodes,
  CompactRange,
  consistencyProofRanges,
  EMPTY_TREE_ROOT,
  hashChildren,
  hashLeaf,
  inclusionProofRanges,
  rootFromLeafHashes,
  subtreeNodes,
  verifyConsistency,
  verifyInclusion,
  type MerkleNodeId,
  type SubtreeRange,
} from './merkle.js';

// --- an independent reference: RFC 6962 §2.1 as written, recursive, over the entries ---------
// (noble's SHA-256, not the code under test's).

const H = (...parts: Uint8Array[]): Uint8Array => {
  const h = nobleSha256.create();
  for (const p of parts) h.update(p);
  return h.digest();
};
const k = (n: number): number => {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
};
function MTH(D: readonly Uint8Array[]): Uint8Array {
  if (D.length === 0) return H();
  if (D.length === 1) return H(Uint8Array.of(0), D[0]!);
  const s = k(D.length);
  return H(Uint8Array.of(1), MTH(D.slice(0, s)), MTH(D.slice(s)));
}
function PATH(m: number, D: readonly Uint8Array[]): Uint8Array[] {
  if (D.length === 1) return [];
  const s = k(D.length);
  return m < s
    ? [...PATH(m, D.slice(0, s)), MTH(D.slice(s))]
    : [...PATH(m - s, D.slice(s)), MTH(D.slice(0, s))];
}
function SUBPROOF(m: number, D: readonly Uint8Array[], b: boolean): Uint8Array[] {
  const n = D.length;
  if (m === n) return b ? [] : [MTH(D)];
  const s = k(n);
  return m <= s
    ? [...SUBPROOF(m, D.slice(0, s), b), MTH(D.slice(s))]
    : [...SUBPROOF(m - s, D.slice(s), false), MTH(D.slice(0, s))];
}
const PROOF = (m: number, D: readonly Uint8Array[]): Uint8Array[] => SUBPROOF(m, D, true);

// --- the code under test, over an in-memory store of every perfect subtree -------------------

function buildStore(entries: readonly Uint8Array[]): Map<string, Uint8Array> {
  const nodes = new Map<string, Uint8Array>();
  const range = new CompactRange();
  entries.forEach((entry, i) => {
    const leaf = hashLeaf(entry);
    nodes.set(`0/${i}`, leaf);
    range.append(leaf, (node, hash) => nodes.set(`${node.level}/${node.index}`, hash));
  });
  return nodes;
}
const read = (store: Map<string, Uint8Array>, node: MerkleNodeId): Uint8Array => {
  const hash = store.get(`${node.level}/${node.index}`);
  if (hash === undefined) throw new Error(`node ${node.level}/${node.index} not stored`);
  return hash;
};
const hashRange = (store: Map<string, Uint8Array>, range: SubtreeRange): Uint8Array =>
  combineSubtreeNodes(subtreeNodes(range).map((n) => read(store, n)));
const inclusion = (store: Map<string, Uint8Array>, index: number, size: number): Uint8Array[] =>
  inclusionProofRanges(index, size).map((r) => hashRange(store, r));
const consistency = (store: Map<string, Uint8Array>, m: number, n: number): Uint8Array[] =>
  consistencyProofRanges(m, n).map((r) => hashRange(store, r));

const entriesOf = (n: number): Uint8Array[] =>
  Array.from({ length: n }, (_, i) => new TextEncoder().encode(`entry ${i}`));
const hexes = (hashes: readonly Uint8Array[]): string[] => hashes.map(toHex);

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (error) {
    if (isMandateError(error)) {
      expect(error.code).toBe(code);
      return;
    }
    throw error;
  }
  expect.fail(`expected ${code}`);
}
const fails = (fn: () => unknown): boolean => {
  try {
    fn();
    return false;
  } catch (error) {
    if (!isMandateError(error)) throw error;
    return true;
  }
};

// --- published vectors ------------------------------------------------------------------------

const vectors = record(readVectorJson('rfc6962/transparency-dev-merkle.json'), 'vectors');
const b64 = (s: unknown): Uint8Array => new Uint8Array(Buffer.from(text(s, 'base64'), 'base64'));

describe('RFC 6962 hashing (transparency-dev/merkle vectors)', () => {
  const hasher = record(vectors.hasher, 'hasher');
  it('hashes the empty tree, leaves and nodes', () => {
    expect(toHex(EMPTY_TREE_ROOT)).toBe(hasher.emptyRoot);
    expect(toHex(rootFromLeafHashes([]))).toBe(hasher.emptyRoot);
    expect(toHex(hashLeaf(new Uint8Array(0)))).toBe(hasher.emptyLeaf);
    expect(toHex(hashLeaf(new TextEncoder().encode('L123456')))).toBe(hasher.leafL123456);
    const n = (s: string): Uint8Array => new TextEncoder().encode(s);
    expect(toHex(hashChildren(n('N123'), n('N456')))).toBe(hasher.childrenN123N456);
  });

  const leaves = list(vectors.leaves, 'leaves').map((l) => fromHex(text(l, 'leaf')));
  const roots = list(vectors.roots, 'roots').map((r) => text(r, 'root'));
  const store = buildStore(leaves);

  it('computes the published roots of every prefix, and the reference agrees', () => {
    for (let size = 1; size <= leaves.length; size++) {
      const D = leaves.slice(0, size);
      expect(toHex(rootFromLeafHashes(D.map(hashLeaf)))).toBe(roots[size - 1]);
      expect(toHex(MTH(D))).toBe(roots[size - 1]);
      expect(toHex(hashRange(store, { start: 0, end: size }))).toBe(roots[size - 1]);
    }
  });

  it('generates and verifies the published inclusion proofs', () => {
    for (const raw of list(vectors.inclusionProofs, 'inclusionProofs')) {
      const v = record(raw, 'inclusion');
      const index = Number(v.leaf) - 1;
      const size = Number(v.size);
      const proof = list(v.proof, 'proof').map((p) => fromHex(text(p, 'hash')));
      expect(hexes(inclusion(store, index, size))).toEqual(hexes(proof));
      verifyInclusion(index, size, hashLeaf(leaves[index]!), proof, fromHex(roots[size - 1]!));
    }
  });

  it('generates and verifies the published consistency proofs', () => {
    for (const raw of list(vectors.consistencyProofs, 'consistencyProofs')) {
      const v = record(raw, 'consistency');
      const m = Number(v.size1);
      const n = Number(v.size2);
      const proof = list(v.proof, 'proof').map((p) => fromHex(text(p, 'hash')));
      expect(hexes(consistency(store, m, n))).toEqual(hexes(proof));
      verifyConsistency(m, n, fromHex(roots[m - 1]!), fromHex(roots[n - 1]!), proof);
    }
  });

  const cases = record(vectors.cases, 'cases');
  it('agrees with every published inclusion case (happy paths and mutations)', () => {
    for (const raw of list(cases.inclusion, 'inclusion cases')) {
      const c = record(raw, 'case');
      const proof = c.proof === null ? [] : list(c.proof, 'proof').map(b64);
      const failed = fails(() => {
        verifyInclusion(Number(c.leafIdx), Number(c.treeSize), b64(c.leafHash), proof, b64(c.root));
      });
      expect({ file: c.file, failed }).toEqual({ file: c.file, failed: c.wantErr });
    }
  });

  it('agrees with every published consistency case (happy paths and mutations)', () => {
    for (const raw of list(cases.consistency, 'consistency cases')) {
      const c = record(raw, 'case');
      const proof = c.proof === null ? [] : list(c.proof, 'proof').map(b64);
      const failed = fails(() => {
        verifyConsistency(Number(c.size1), Number(c.size2), b64(c.root1), b64(c.root2), proof);
      });
      expect({ file: c.file, failed }).toEqual({ file: c.file, failed: c.wantErr });
    }
  });
});

// --- properties against the reference ---------------------------------------------------------

const flip = (hash: Uint8Array, bit: number): Uint8Array => {
  const copy = hash.slice();
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
};

describe('Merkle proofs against the recursive RFC 6962 reference', () => {
  const MAX = 300;
  const all = entriesOf(MAX);
  const store = buildStore(all);
  const referenceRoots = new Map<number, Uint8Array>();
  const rootOf = (size: number): Uint8Array => {
    let root = referenceRoots.get(size);
    if (root === undefined) {
      root = MTH(all.slice(0, size));
      referenceRoots.set(size, root);
    }
    return root;
  };

  it('roots: the compact range and the stored nodes equal MTH for every size', () => {
    const range = new CompactRange();
    expect(range.root()).toEqual(H());
    for (let size = 1; size <= MAX; size++) {
      range.append(hashLeaf(all[size - 1]!));
      expect(range.root()).toEqual(rootOf(size));
      expect(hashRange(store, { start: 0, end: size })).toEqual(rootOf(size));
      const nodes = subtreeNodes({ start: 0, end: size });
      const restored = CompactRange.fromNodes(
        size,
        nodes.map((n) => read(store, n)),
      );
      expect(restored.root()).toEqual(rootOf(size));
    }
  });

  const sizeAndIndex = fc
    .integer({ min: 1, max: MAX })
    .chain((size) => fc.tuple(fc.constant(size), fc.integer({ min: 0, max: size - 1 })));

  it('inclusion: the generated proof is PATH(m, D[n]) and verifies', () => {
    fc.assert(
      fc.property(sizeAndIndex, ([size, index]) => {
        const proof = inclusion(store, index, size);
        expect(hexes(proof)).toEqual(hexes(PATH(index, all.slice(0, size))));
        verifyInclusion(index, size, hashLeaf(all[index]!), proof, rootOf(size));
      }),
      { numRuns: 400 },
    );
  });

  it('inclusion: a mutated proof, wrong index, wrong size, wrong leaf or wrong root fails', () => {
    fc.assert(
      fc.property(
        sizeAndIndex,
        fc.nat(),
        fc.nat(255),
        fc.integer({ min: 1, max: MAX + 5 }),
        ([size, index], pick, bit, other) => {
          const proof = inclusion(store, index, size);
          const leaf = hashLeaf(all[index]!);
          const root = rootOf(size);
          const code = 'ERR_MERKLE_INCLUSION_INVALID';
          if (proof.length > 0) {
            const i = pick % proof.length;
            const mutated = proof.map((p, j) => (j === i ? flip(p, bit) : p));
            expectCode(() => {
              verifyInclusion(index, size, leaf, mutated, root);
            }, code);
            expectCode(() => {
              verifyInclusion(index, size, leaf, proof.slice(0, -1), root);
            }, code);
            const swapped = [...proof].reverse();
            if (proof.length > 1 && hexes(swapped).join() !== hexes(proof).join()) {
              expectCode(() => {
                verifyInclusion(index, size, leaf, swapped, root);
              }, code);
            }
          }
          expectCode(() => {
            verifyInclusion(index, size, leaf, [...proof, root], root);
          }, code);
          expectCode(() => {
            verifyInclusion(index, size, flip(leaf, bit), proof, root);
          }, code);
          expectCode(() => {
            verifyInclusion(index, size, leaf, proof, flip(root, bit));
          }, code);
          const wrongIndex = other % (size + 3);
          if (wrongIndex !== index) {
            expectCode(() => {
              verifyInclusion(wrongIndex, size, leaf, proof, root);
            }, code);
          }
          // RFC 9162's algorithm checks the size only through the path's shape (the root binds
          // the size through the checkpoint): against another tree's real root, it must fail.
          if (other !== size && other <= MAX) {
            expectCode(() => {
              verifyInclusion(index, other, leaf, proof, rootOf(other));
            }, code);
          }
          if (size > 1) {
            expectCode(() => {
              verifyInclusion(index, size * 2, leaf, proof, root);
            }, code);
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  const twoSizes = fc
    .integer({ min: 1, max: MAX })
    .chain((n) => fc.tuple(fc.integer({ min: 0, max: n }), fc.constant(n)));

  it('consistency: the generated proof is PROOF(m, D[n]) and verifies', () => {
    fc.assert(
      fc.property(twoSizes, ([m, n]) => {
        const proof = consistency(store, m, n);
        const expected = m === 0 || m === n ? [] : PROOF(m, all.slice(0, n));
        expect(hexes(proof)).toEqual(hexes(expected));
        verifyConsistency(m, n, rootOf(m), rootOf(n), proof);
      }),
      { numRuns: 400 },
    );
  });

  it('consistency: a mutated proof, wrong sizes or wrong roots fail', () => {
    fc.assert(
      fc.property(
        twoSizes,
        fc.nat(),
        fc.nat(255),
        fc.integer({ min: 0, max: MAX + 5 }),
        ([m, n], pick, bit, other) => {
          const proof = consistency(store, m, n);
          const r1 = rootOf(m);
          const r2 = rootOf(n);
          const code = 'ERR_MERKLE_CONSISTENCY_INVALID';
          expectCode(() => {
            verifyConsistency(m, n, flip(r1, bit), r2, proof);
          }, code);
          if (m !== 0)
            expectCode(() => {
              verifyConsistency(m, n, r1, flip(r2, bit), proof);
            }, code);
          if (proof.length > 0) {
            const i = pick % proof.length;
            const mutated = proof.map((p, j) => (j === i ? flip(p, bit) : p));
            expectCode(() => {
              verifyConsistency(m, n, r1, r2, mutated);
            }, code);
            expectCode(() => {
              verifyConsistency(m, n, r1, r2, proof.slice(0, -1));
            }, code);
            expectCode(() => {
              verifyConsistency(m, n, r1, r2, [proof[0]!, ...proof]);
            }, code);
          }
          expectCode(() => {
            verifyConsistency(m, n, r1, r2, [...proof, r2]);
          }, code);
          if (other !== m && other !== 0 && other !== n && other <= MAX) {
            // The real root of another first size: right root, wrong size — still fails.
            expectCode(() => {
              verifyConsistency(other, n, rootOf(other), r2, proof);
            }, code);
          }
          if (other !== n && other >= m && other <= MAX && m !== 0) {
            expectCode(() => {
              verifyConsistency(m, other, r1, rootOf(other), proof);
            }, code);
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('Merkle argument and bound checks', () => {
  it('refuses out-of-range indices and sizes for generation', () => {
    expectCode(() => inclusionProofRanges(3, 3), 'ERR_ARGUMENT_INVALID');
    expectCode(() => inclusionProofRanges(-1, 3), 'ERR_ARGUMENT_INVALID');
    expectCode(() => inclusionProofRanges(0, 2 ** 53), 'ERR_ARGUMENT_INVALID');
    expectCode(() => consistencyProofRanges(4, 3), 'ERR_ARGUMENT_INVALID');
    expectCode(() => subtreeNodes({ start: 3, end: 7 }), 'ERR_ARGUMENT_INVALID');
    expectCode(() => subtreeNodes({ start: 2, end: 2 }), 'ERR_ARGUMENT_INVALID');
    expect(subtreeNodes({ start: 4, end: 7 })).toEqual([
      { level: 1, index: 2 },
      { level: 0, index: 6 },
    ]);
  });

  it('rejects proofs with too many or wrongly sized hashes', () => {
    const h = new Uint8Array(32);
    expectCode(() => {
      verifyInclusion(
        0,
        2,
        h,
        Array.from({ length: 65 }, () => h),
        h,
      );
    }, 'ERR_MERKLE_INCLUSION_INVALID');
    expectCode(() => {
      verifyInclusion(0, 2, h, [new Uint8Array(31)], h);
    }, 'ERR_MERKLE_INCLUSION_INVALID');
    expectCode(() => {
      verifyInclusion(0, 1, h, [], new Uint8Array(0));
    }, 'ERR_MERKLE_INCLUSION_INVALID');
    expectCode(() => {
      verifyConsistency(1, 2, h, h, [new Uint8Array(33)]);
    }, 'ERR_MERKLE_CONSISTENCY_INVALID');
  });

  it('handles trees far beyond 2^32 leaves (bigint bit shifts)', () => {
    // A proof for the last leaf of a tree of 2^40 + 3 leaves: the ranges are computable and a
    // proof of the right length with arbitrary hashes reaches *some* root, which must verify
    // exactly when that root is supplied and fail for a neighbouring index.
    const size = 2 ** 40 + 3;
    const index = size - 1;
    const ranges = inclusionProofRanges(index, size);
    const proof = ranges.map((_, i) => hashLeaf(Uint8Array.of(i)));
    const leaf = hashLeaf(Uint8Array.of(0xff));
    let root = leaf;
    // Rebuild the root the slow way from the ranges' positions relative to the leaf.
    ranges.forEach((r, i) => {
      root = r.start > index ? hashChildren(root, proof[i]!) : hashChildren(proof[i]!, root);
    });
    verifyInclusion(index, size, leaf, proof, root);
    expectCode(() => {
      verifyInclusion(index - 1, size, leaf, proof, root);
    }, 'ERR_MERKLE_INCLUSION_INVALID');
    expect(subtreeNodes({ start: 0, end: size })).toEqual([
      { level: 40, index: 0 },
      { level: 1, index: 2 ** 39 },
      { level: 0, index: 2 ** 40 + 2 },
    ]);
  });
});
