/**
 * RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verification: a pure, synchronous
 * core. Proof *generation* is split in two so that storage stays outside: a proof is a list of
 * subtree ranges (computed here from the index and sizes alone), each range is the ordered list
 * of perfect subtrees it decomposes into (its {@link MerkleNodeId}s, read from storage in one
 * batch), and {@link combineSubtreeNodes} folds those hashes into the range's hash. A store that
 * keeps every perfect subtree hash answers any proof with O(log n) node reads per range.
 *
 * Verification follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) step by step,
 * with `bigint` so that the bit shifts hold for every size up to 2^53 − 1.
 */
import { invalid } from '../core/internal.js';
import { sha256 } from '../crypto/index.js';
import { bytesEqual } from '../encoding/index.js';

/** SHA-256 output size: every leaf, node and root hash. */
export const MERKLE_HASH_BYTES = 32;

/** A proof longer than this cannot belong to a tree of at most 2^53 − 1 leaves. */
export const MAX_PROOF_HASHES = 64;

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

/** The hash of the empty tree: SHA-256 of no bytes (RFC 9162 §2.1.1). */
export const EMPTY_TREE_ROOT: Uint8Array = sha256(new Uint8Array(0));

// The prefixed input is written into one reused buffer (hashing is synchronous, so no two uses
// overlap): no allocation per leaf or node.
let scratch = Buffer.allocUnsafeSlow(4096);

function prefixed(prefix: number, length: number): Buffer {
  if (scratch.length < length)
    scratch = Buffer.allocUnsafeSlow(Math.max(length, 2 * scratch.length));
  scratch[0] = prefix;
  return scratch;
}

/** `SHA-256(0x00 ‖ data)`: the hash of one log entry (RFC 9162 §2.1.1). */
export function hashLeaf(data: Uint8Array): Uint8Array {
  const length = data.byteLength + 1;
  const input = prefixed(LEAF_PREFIX, length);
  input.set(data, 1);
  return sha256(input.subarray(0, length));
}

/** `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node (RFC 9162 §2.1.1). */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  const length = 1 + left.byteLength + right.byteLength;
  const input = prefixed(NODE_PREFIX, length);
  input.set(left, 1);
  input.set(right, 1 + left.byteLength);
  return sha256(input.subarray(0, length));
}

/**
 * A perfect subtree: the `2^level` leaves from `index · 2^level`. Level 0 is a leaf hash; a
 * store holds node (level, index) once `(index + 1) · 2^level ≤ tree size`.
 */
export interface MerkleNodeId {
  readonly level: number;
  readonly index: number;
}

/** The leaves `[start, end)` of a tree, whose hash is MTH(D[start:end]). */
export interface SubtreeRange {
  readonly start: number;
  readonly end: number;
}

function checkSize(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw invalid('ERR_ARGUMENT_INVALID', `\`${name}\` must be a non-negative safe integer`);
  }
}

/** The largest power of two strictly smaller than `n` (n ≥ 2): RFC 9162's split point k. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * The ranges whose hashes form the inclusion proof of leaf `index` in the tree of `treeSize`
 * leaves, in proof order (RFC 9162 §2.1.3.1, PATH(m, D[n]), unrolled: the deepest sibling
 * first).
 */
export function inclusionProofRanges(index: number, treeSize: number): SubtreeRange[] {
  checkSize(index, 'index');
  checkSize(treeSize, 'treeSize');
  if (index >= treeSize) {
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `leaf index ${index} is not in a tree of ${treeSize} leaves`,
    );
  }
  const siblings: SubtreeRange[] = [];
  let start = 0;
  let end = treeSize;
  let m = index;
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (m < k) {
      siblings.push({ start: start + k, end });
      end = start + k;
    } else {
      siblings.push({ start, end: start + k });
      m -= k;
      start += k;
    }
  }
  return siblings.reverse();
}

/**
 * The ranges whose hashes form the consistency proof from the tree of `firstSize` leaves to the
 * tree of `secondSize` (RFC 9162 §2.1.4.1, SUBPROOF(m, D[n], true), unrolled). Empty when
 * `firstSize` is 0 or equals `secondSize`.
 */
export function consistencyProofRanges(firstSize: number, secondSize: number): SubtreeRange[] {
  checkSize(firstSize, 'firstSize');
  checkSize(secondSize, 'secondSize');
  if (firstSize > secondSize) {
    throw invalid(
      'ERR_ARGUMENT_INVALID',
      `no consistency proof from ${firstSize} leaves back to ${secondSize}`,
    );
  }
  if (firstSize === 0 || firstSize === secondSize) return [];
  const siblings: SubtreeRange[] = [];
  let start = 0;
  let end = secondSize;
  let m = firstSize;
  let complete = true; // SUBPROOF's b: the subtree is the whole old tree, known to the verifier
  let terminal: SubtreeRange | undefined;
  for (;;) {
    const n = end - start;
    if (m === n) {
      if (!complete) terminal = { start, end };
      break;
    }
    const k = splitPoint(n);
    if (m <= k) {
      siblings.push({ start: start + k, end });
      end = start + k;
    } else {
      siblings.push({ start, end: start + k });
      m -= k;
      start += k;
      complete = false;
    }
  }
  siblings.reverse();
  return terminal === undefined ? siblings : [terminal, ...siblings];
}

/**
 * The perfect subtrees `range` decomposes into, left to right: the binary digits of its size. A
 * range must be one of RFC 9162's recursion (its start a multiple of the smallest power of two ≥
 * its size), else `ERR_ARGUMENT_INVALID`. At most 53 nodes.
 */
export function subtreeNodes(range: SubtreeRange): MerkleNodeId[] {
  checkSize(range.start, 'start');
  checkSize(range.end, 'end');
  if (range.end <= range.start) throw invalid('ERR_ARGUMENT_INVALID', 'an empty subtree range');
  // Only a range of the recursion (start a multiple of the power of two that covers its size)
  // has MTH equal to the right fold of its binary decomposition.
  let cover = 1;
  while (cover < range.end - range.start) cover *= 2;
  if (range.start % cover !== 0) {
    throw invalid('ERR_ARGUMENT_INVALID', `[${range.start}, ${range.end}) is not a subtree range`);
  }
  const nodes: MerkleNodeId[] = [];
  let s = range.start;
  while (s < range.end) {
    let size = 1;
    let level = 0;
    while (size * 2 <= range.end - s && s % (size * 2) === 0) {
      size *= 2;
      level++;
    }
    nodes.push({ level, index: s / size });
    s += size;
  }
  return nodes;
}

/** MTH of a range from the hashes of its {@link subtreeNodes}: a right fold (RFC 9162 §2.1.1). */
export function combineSubtreeNodes(hashes: readonly Uint8Array[]): Uint8Array {
  let i = hashes.length - 1;
  if (i < 0) throw invalid('ERR_ARGUMENT_INVALID', 'no subtree hashes to combine');
  let root = hashes[i]!;
  while (--i >= 0) root = hashChildren(hashes[i]!, root);
  return root;
}

/**
 * The compact range of a tree: the hashes of the perfect subtrees of `[0, size)`, which is all a
 * writer needs to append leaves and know the root. `append` returns the perfect nodes it
 * completes (level ≥ 1), so a store can keep every perfect subtree.
 */
export class CompactRange {
  #size = 0;
  readonly #hashes: Uint8Array[] = [];
  readonly #levels: number[] = [];

  /** A compact range from its nodes (`subtreeNodes({ start: 0, end: size })` and their hashes). */
  static fromNodes(size: number, hashes: readonly Uint8Array[]): CompactRange {
    checkSize(size, 'size');
    const range = new CompactRange();
    if (size === 0) {
      if (hashes.length !== 0) throw invalid('ERR_ARGUMENT_INVALID', 'an empty tree has no nodes');
      return range;
    }
    const nodes = subtreeNodes({ start: 0, end: size });
    if (nodes.length !== hashes.length) {
      throw invalid('ERR_ARGUMENT_INVALID', `a tree of ${size} leaves has ${nodes.length} nodes`);
    }
    nodes.forEach((node, i) => {
      range.#levels.push(node.level);
      range.#hashes.push(hashes[i]!);
    });
    range.#size = size;
    return range;
  }

  get size(): number {
    return this.#size;
  }

  /** A copy, so a writer can prepare the next state and keep this one if the commit fails. */
  clone(): CompactRange {
    const copy = new CompactRange();
    copy.#size = this.#size;
    copy.#hashes.push(...this.#hashes);
    copy.#levels.push(...this.#levels);
    return copy;
  }

  append(leafHash: Uint8Array, completed?: (node: MerkleNodeId, hash: Uint8Array) => void): void {
    let hash = leafHash;
    let level = 0;
    let index = this.#size;
    while (this.#levels.length > 0 && this.#levels[this.#levels.length - 1] === level) {
      this.#levels.pop();
      hash = hashChildren(this.#hashes.pop()!, hash);
      level++;
      index = Math.floor(index / 2);
      completed?.({ level, index }, hash);
    }
    this.#levels.push(level);
    this.#hashes.push(hash);
    this.#size++;
  }

  /** MTH of the whole tree; the empty tree's root when no leaf was appended. */
  root(): Uint8Array {
    return this.#hashes.length === 0 ? EMPTY_TREE_ROOT : combineSubtreeNodes(this.#hashes);
  }
}

/** MTH(D[0:n]) of a list of leaf hashes, in one pass and O(log n) memory. */
export function rootFromLeafHashes(leafHashes: Iterable<Uint8Array>): Uint8Array {
  const range = new CompactRange();
  for (const leafHash of leafHashes) range.append(leafHash);
  return range.root();
}

// --- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) -------------------------------------------

function inclusionInvalid(message: string): never {
  throw invalid('ERR_MERKLE_INCLUSION_INVALID', message);
}

function consistencyInvalid(message: string): never {
  throw invalid('ERR_MERKLE_CONSISTENCY_INVALID', message);
}

function checkHashes(
  hashes: readonly Uint8Array[],
  fail: (message: string) => never,
  what: string,
): void {
  if (hashes.length > MAX_PROOF_HASHES) fail(`${what} has more than ${MAX_PROOF_HASHES} hashes`);
  for (const h of hashes) {
    if (!(h instanceof Uint8Array) || h.byteLength !== MERKLE_HASH_BYTES) {
      fail(`${what} holds a hash that is not ${MERKLE_HASH_BYTES} bytes`);
    }
  }
}

function checkHash(hash: Uint8Array, fail: (message: string) => never, what: string): void {
  if (!(hash instanceof Uint8Array) || hash.byteLength !== MERKLE_HASH_BYTES) {
    fail(`the ${what} is not ${MERKLE_HASH_BYTES} bytes`);
  }
}

const isSizeValue = (value: number): boolean => Number.isSafeInteger(value) && value >= 0;

/**
 * The root an inclusion proof leads to, RFC 9162 §2.1.3.2 steps 1–4, plus step 5's `sn = 0`.
 * Throws `ERR_MERKLE_INCLUSION_INVALID` when the proof cannot fit the index and size.
 */
export function rootFromInclusionProof(
  leafIndex: number,
  treeSize: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
): Uint8Array {
  if (!isSizeValue(leafIndex) || !isSizeValue(treeSize)) {
    inclusionInvalid('the leaf index and tree size must be non-negative safe integers');
  }
  checkHash(leafHash, inclusionInvalid, 'leaf hash');
  checkHashes(proof, inclusionInvalid, 'the inclusion proof');
  // 1. leaf_index ≥ tree_size fails.
  if (leafIndex >= treeSize) inclusionInvalid(`leaf ${leafIndex} is not in a tree of ${treeSize}`);
  // 2. fn = leaf_index, sn = tree_size − 1.
  let fn = BigInt(leafIndex);
  let sn = BigInt(treeSize) - 1n;
  // 3. r = hash.
  let r = leafHash;
  // 4. For each p in the inclusion path:
  for (const p of proof) {
    // a. sn = 0 stops and fails.
    if (sn === 0n) inclusionInvalid('the inclusion proof is longer than the path');
    // b. LSB(fn) set, or fn = sn:
    if ((fn & 1n) === 1n || fn === sn) {
      r = hashChildren(p, r);
      // ii. If LSB(fn) is not set, shift both until LSB(fn) is set or fn is 0.
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    // c. Shift both once.
    fn >>= 1n;
    sn >>= 1n;
  }
  // 5. sn must be 0 (the comparison of r with the root is the caller's).
  if (sn !== 0n) inclusionInvalid('the inclusion proof is shorter than the path');
  return r;
}

/**
 * Verifies that `leafHash` is leaf `leafIndex` of the tree of `treeSize` leaves whose root is
 * `root` (RFC 9162 §2.1.3.2). Throws `ERR_MERKLE_INCLUSION_INVALID` otherwise.
 */
export function verifyInclusion(
  leafIndex: number,
  treeSize: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  checkHash(root, inclusionInvalid, 'root hash');
  const computed = rootFromInclusionProof(leafIndex, treeSize, leafHash, proof);
  if (!bytesEqual(computed, root)) inclusionInvalid('the inclusion proof leads to another root');
}

/**
 * Verifies that the tree of `firstSize` leaves with root `firstRoot` is a prefix of the tree of
 * `secondSize` leaves with root `secondRoot` (RFC 9162 §2.1.4.2). Throws
 * `ERR_MERKLE_CONSISTENCY_INVALID` otherwise.
 *
 * The cases the RFC's algorithm leaves out (it assumes 0 < first < second) are strict: equal
 * sizes need an empty proof and equal roots; from size 0, an empty proof and the empty tree's
 * root as `firstRoot`.
 */
export function verifyConsistency(
  firstSize: number,
  secondSize: number,
  firstRoot: Uint8Array,
  secondRoot: Uint8Array,
  proof: readonly Uint8Array[],
): void {
  if (!isSizeValue(firstSize) || !isSizeValue(secondSize)) {
    consistencyInvalid('tree sizes must be non-negative safe integers');
  }
  checkHash(firstRoot, consistencyInvalid, 'first root hash');
  checkHash(secondRoot, consistencyInvalid, 'second root hash');
  checkHashes(proof, consistencyInvalid, 'the consistency proof');
  if (firstSize > secondSize) {
    consistencyInvalid(`a tree of ${secondSize} leaves cannot extend one of ${firstSize}`);
  }
  if (firstSize === secondSize) {
    if (proof.length !== 0) consistencyInvalid('equal tree sizes take an empty proof');
    if (!bytesEqual(firstRoot, secondRoot)) consistencyInvalid('equal sizes, different roots');
    return;
  }
  if (firstSize === 0) {
    if (proof.length !== 0) consistencyInvalid('a proof from the empty tree is empty');
    if (!bytesEqual(firstRoot, EMPTY_TREE_ROOT)) {
      consistencyInvalid('the first root is not the empty tree root');
    }
    return;
  }
  // 1. An empty consistency_path fails.
  if (proof.length === 0) consistencyInvalid('the consistency proof is empty');
  // 2. If first is an exact power of 2, prepend first_hash to the path.
  const path = isPowerOfTwo(firstSize) ? [firstRoot, ...proof] : [...proof];
  // 3. fn = first − 1, sn = second − 1.
  let fn = BigInt(firstSize) - 1n;
  let sn = BigInt(secondSize) - 1n;
  // 4. If LSB(fn) is set, shift both until LSB(fn) is not set.
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  // 5. fr = sr = the first value of the path.
  let fr = path[0]!;
  let sr = path[0]!;
  // 6. For each subsequent value c:
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!;
    // a. sn = 0 stops and fails.
    if (sn === 0n) consistencyInvalid('the consistency proof is longer than the path');
    // b. LSB(fn) set, or fn = sn:
    if ((fn & 1n) === 1n || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      // iii. If LSB(fn) is not set, shift both until LSB(fn) is set or fn is 0.
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    // c. Shift both once.
    fn >>= 1n;
    sn >>= 1n;
  }
  // 7. fr = first_hash, sr = second_hash and sn = 0.
  if (sn !== 0n) consistencyInvalid('the consistency proof is shorter than the path');
  if (!bytesEqual(fr, firstRoot)) consistencyInvalid('the proof does not lead to the first root');
  if (!bytesEqual(sr, secondRoot)) consistencyInvalid('the proof does not lead to the second root');
}

function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}
