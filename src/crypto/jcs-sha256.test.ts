import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { jcsSha256 } from './index.js';

describe('jcsSha256', () => {
  it('is the hex SHA-256 of the JCS text, whatever the member order', () => {
    const a = jcsSha256({ order: 'o-1', amount: 5, tags: ['x', 1e21] });
    const b = jcsSha256({ tags: ['x', 1e21], amount: 5, order: 'o-1' });
    expect(a.text).toBe('{"amount":5,"order":"o-1","tags":["x",1e+21]}');
    expect(b).toEqual(a);
    expect(a.digest).toBe(createHash('sha256').update(a.text, 'utf8').digest('hex'));
  });
});
