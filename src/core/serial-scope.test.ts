import { describe, expect, it } from 'vitest';
import { SerialScope } from './serial-scope.js';

describe('SerialScope', () => {
  it('runs transactions one at a time, nested work joins, outside writes wait', async () => {
    const scope = new SerialScope();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = scope.transaction(
      async () => {
        log.push('first:start');
        await scope.write(() => log.push('first:nested-write'));
        await scope.transaction(() => {
          log.push('first:nested-transaction');
          return Promise.resolve();
        });
        await gate;
        log.push('first:end');
      },
      { begin: () => log.push('begin'), commit: () => log.push('commit') },
    );
    const outside = scope.write(() => log.push('outside-write'));
    await Promise.resolve();
    release();
    await Promise.all([first, outside]);
    expect(log).toEqual([
      'begin',
      'first:start',
      'first:nested-write',
      'first:nested-transaction',
      'first:end',
      'commit',
      'outside-write',
    ]);
  });

  it('rolls back on failure, releases the lock, and is active only inside', async () => {
    const scope = new SerialScope();
    const hooks: string[] = [];
    expect(scope.active).toBe(false);
    await expect(
      scope.transaction(
        () => {
          expect(scope.active).toBe(true);
          return Promise.reject(new Error('boom'));
        },
        { commit: () => hooks.push('commit'), rollback: () => hooks.push('rollback') },
      ),
    ).rejects.toThrow('boom');
    expect(hooks).toEqual(['rollback']);
    expect(await scope.write(() => 42)).toBe(42);
  });
});
