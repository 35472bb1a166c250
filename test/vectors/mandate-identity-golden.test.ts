import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromHex } from '../../src/encoding/index.js';
import {
  parseIdentifier,
  Purpose,
  verifyChangeHistory,
  verifyPurposeKeyAttestation,
} from '../../src/identity/index.js';
import { repoRoot } from '../helpers/vectors.js';
import { buildGoldenVectors } from './golden.js';

interface Golden {
  identifier: string;
  oneChangeHistory: string;
  rotatedHistory: string;
  changeHashes: string[];
  credentialKeyAttestation: string;
  secureChannelKeyAttestation: string;
  attestationBeforeRotation: string;
  times: { change0: number; change1: number };
}

const golden = JSON.parse(
  readFileSync(join(repoRoot, 'docs', 'spec', 'vectors', 'identity-rotation.json'), 'utf8'),
) as Golden;

describe('Mandate golden identity vectors (docs/spec/vectors/identity-rotation.json)', () => {
  it('are reproduced byte for byte from their seeds', () => {
    expect(buildGoldenVectors()).toEqual(golden);
  });

  it('verify: rotation keeps the identifier', () => {
    const one = verifyChangeHistory(fromHex(golden.oneChangeHistory));
    const rotated = verifyChangeHistory(fromHex(golden.rotatedHistory), {
      expectedIdentifier: parseIdentifier(golden.identifier),
    });
    expect(one.identifier).toBe(golden.identifier);
    expect(rotated.changes.map((c) => Buffer.from(c.changeHash).toString('hex'))).toEqual(
      golden.changeHashes,
    );
  });

  it('verify the attestations, and the grace rule across the rotation', () => {
    const rotated = verifyChangeHistory(fromHex(golden.rotatedHistory));
    const t1 = golden.times.change1;
    expect(
      verifyPurposeKeyAttestation(rotated, fromHex(golden.credentialKeyAttestation), {
        nowSeconds: t1 + 1,
        expectedPurpose: Purpose.credentials,
      }).inRotationGrace,
    ).toBe(false);
    expect(
      verifyPurposeKeyAttestation(rotated, fromHex(golden.secureChannelKeyAttestation), {
        nowSeconds: t1 + 1,
        expectedPurpose: Purpose.secureChannel,
      }).key.purpose,
    ).toBe(Purpose.secureChannel);
    expect(
      verifyPurposeKeyAttestation(rotated, fromHex(golden.attestationBeforeRotation), {
        nowSeconds: t1 + 299,
      }).inRotationGrace,
    ).toBe(true);
    expect(() =>
      verifyPurposeKeyAttestation(rotated, fromHex(golden.attestationBeforeRotation), {
        nowSeconds: t1 + 300,
      }),
    ).toThrow(expect.objectContaining({ code: 'ERR_PURPOSE_KEY_STALE' }));
  });
});
