import { describe, expect, it } from 'vitest';
import { isMandateError } from '../core/index.js';
import { invalid, silentLogger } from '../core/internal.js';
import { Lifecycle } from './lifecycle.js';

describe('Lifecycle', () => {
  it('starts parts in order and stops them in reverse, also after a failed stop', async () => {
    const events: string[] = [];
    const lifecycle = new Lifecycle({ logger: silentLogger });
    for (const name of ['home', 'router', 'listener', 'service'])
      await lifecycle.start(
        name,
        () => {
          events.push(`start ${name}`);
          return name;
        },
        (value) => {
          events.push(`stop ${value}`);
          if (value === 'listener') throw new Error('listener failed to close');
        },
      );
    lifecycle.running();
    await lifecycle.stop(1_000);
    expect(events).toEqual([
      'start home',
      'start router',
      'start listener',
      'start service',
      'stop service',
      'stop listener',
      'stop router',
      'stop home',
    ]);
    expect(lifecycle.state).toBe('stopped');
    // Idempotent: a second signal does not stop anything twice.
    await lifecycle.stop(1_000);
    expect(events).toHaveLength(8);
  });

  it('a part that fails to start is not stopped; those before it are, by the caller', async () => {
    const stopped: string[] = [];
    const lifecycle = new Lifecycle({ logger: silentLogger });
    await lifecycle.start(
      'home',
      () => 'home',
      (v) => void stopped.push(v),
    );
    await expect(
      lifecycle.start(
        'port',
        () => {
          throw invalid('ERR_TRANSPORT_LISTEN_FAILED', 'address in use');
        },
        () => void stopped.push('port'),
      ),
    ).rejects.toMatchObject({ code: 'ERR_TRANSPORT_LISTEN_FAILED' });
    await lifecycle.stop(1_000);
    expect(stopped).toEqual(['home']);
  });

  it('gives up waiting past the bound with ERR_NODE_STOP_TIMEOUT, naming the part', async () => {
    const lifecycle = new Lifecycle({ logger: silentLogger });
    await lifecycle.start(
      'home',
      () => undefined,
      () => undefined,
    );
    await lifecycle.start(
      'stuck',
      () => undefined,
      () => new Promise<void>(() => undefined),
    );
    const error: unknown = await lifecycle.stop(20).catch((e: unknown) => e);
    expect(isMandateError(error, 'ERR_NODE_STOP_TIMEOUT')).toBe(true);
    expect((error as Error).message).toContain('`stuck`');
  });

  it('is ready only while running and every part is ready; a throwing probe reports its code', async () => {
    const lifecycle = new Lifecycle({ logger: silentLogger });
    let fresh = true;
    await lifecycle.start(
      'deny-set',
      () => undefined,
      () => undefined,
      () => {
        if (!fresh) throw invalid('ERR_DENY_SET_STALE', 'stale');
        return { ready: true };
      },
    );
    expect(lifecycle.health()).toMatchObject({ state: 'starting', ready: false });
    lifecycle.running();
    expect(lifecycle.health()).toEqual({
      state: 'running',
      ready: true,
      parts: { 'deny-set': { ready: true } },
    });
    fresh = false;
    expect(lifecycle.health()).toEqual({
      state: 'running',
      ready: false,
      parts: { 'deny-set': { ready: false, reason: 'ERR_DENY_SET_STALE' } },
    });
    await lifecycle.stop(1_000);
    expect(lifecycle.health()).toMatchObject({ state: 'stopped', ready: false, parts: {} });
  });
});
