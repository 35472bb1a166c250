import { chmodSync, chownSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openHome } from './home.js';

const fresh = () => join(mkdtempSync(join(tmpdir(), 'mandate-home-')), 'home');

async function codeOf(dir: string): Promise<string> {
  try {
    (await openHome(dir)).close();
    return 'opened';
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
}

describe('openHome', () => {
  it('refuses a home another local user could change: a world-writable folder or database', async () => {
    const dir = fresh();
    expect(await codeOf(dir)).toBe('opened');
    chmodSync(dir, 0o777);
    expect(await codeOf(dir)).toBe('ERR_HOME_INSECURE');
    chmodSync(dir, 0o750);
    expect(await codeOf(dir)).toBe('opened');
    chmodSync(join(dir, 'mandate.db'), 0o666);
    expect(await codeOf(dir)).toBe('ERR_HOME_INSECURE');
    chmodSync(join(dir, 'mandate.db'), 0o600);
    expect(await codeOf(dir)).toBe('opened');
  });

  it.skipIf(process.getuid?.() !== 0)(
    'refuses a database owned by another user (run as root: chown to nobody)',
    async () => {
      const dir = fresh();
      expect(await codeOf(dir)).toBe('opened');
      chownSync(join(dir, 'mandate.db'), 65534, 65534);
      // Root owns nothing here but may open anything: the check is about the owner, not access.
      expect(await codeOf(dir)).toBe('ERR_HOME_INSECURE');
    },
  );
});
