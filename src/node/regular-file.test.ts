import { spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readRegularFile } from './regular-file.js';

const dir = mkdtempSync(join(tmpdir(), 'mandate-regular-file-'));

describe('readRegularFile', () => {
  it('reads a regular file of up to the bound, whole', () => {
    const path = join(dir, 'ten.txt');
    writeFileSync(path, '0123456789');
    expect(readRegularFile(path, 10)).toEqual({ bytes: Buffer.from('0123456789') });
    expect(readRegularFile(path, 9)).toEqual({ refused: 'too_large' });
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '');
    expect(readRegularFile(empty, 10)).toEqual({ bytes: Buffer.alloc(0) });
    // Larger than the first buffer fstat sizes: read whole, or refused, at the bound exactly.
    const big = join(dir, 'big.bin');
    writeFileSync(big, Buffer.alloc(100_000, 7));
    expect(readRegularFile(big, 100_000)).toEqual({ bytes: Buffer.alloc(100_000, 7) });
    expect(readRegularFile(big, 99_999)).toEqual({ refused: 'too_large' });
  });

  it('refuses a device, a named pipe and a directory without reading or waiting', () => {
    const fifo = join(dir, 'pipe');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    for (const path of ['/dev/zero', '/dev/urandom', fifo, dir])
      expect(readRegularFile(path, 1024), path).toEqual({ refused: 'not_regular' });
    expect(readRegularFile(join(dir, 'absent'), 1024)).toEqual({ refused: 'missing' });
  });

  it('bounds a regular file that reports no size (/proc)', () => {
    expect(readRegularFile('/proc/self/status', 4)).toEqual({ refused: 'too_large' });
  });

  it('with noFollow, refuses a symbolic link without opening what it names', () => {
    const target = join(dir, 'target.txt');
    writeFileSync(target, 'bytes');
    const link = join(dir, 'link');
    symlinkSync(target, link);
    expect(readRegularFile(link, 10)).toEqual({ bytes: Buffer.from('bytes') });
    expect(readRegularFile(link, 10, { noFollow: true })).toEqual({ refused: 'not_regular' });
    expect(readRegularFile(target, 10, { noFollow: true })).toEqual({
      bytes: Buffer.from('bytes'),
    });
    // A link to what would block or never end: refused as a link, its target never opened.
    for (const to of ['/proc/self/pagemap', '/dev/zero']) {
      const other = join(dir, `link-${to.replaceAll('/', '-')}`);
      symlinkSync(to, other);
      expect(readRegularFile(other, 10, { noFollow: true }), to).toEqual({
        refused: 'not_regular',
      });
    }
    const dangling = join(dir, 'dangling');
    symlinkSync(join(dir, 'absent'), dangling);
    expect(readRegularFile(dangling, 10, { noFollow: true })).toEqual({ refused: 'not_regular' });
  });
});
