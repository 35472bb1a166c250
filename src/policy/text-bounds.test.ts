import { describe, expect, it } from 'vitest';
import { compilePolicySet } from './index.js';
import { engine, parsePolicySet } from './cedar.js';
import { MAX_CEDAR_NESTING, MAX_POLICY_OPERATORS } from './text-bounds.js';
import { codeOf } from '../../test/helpers/errors.js';

// Outside-attack hole F7 (docs/threat-model.md): hostile Cedar text crashed cedar-wasm.
const P = 'permit(principal, action, resource) when { ';

describe('Cedar text is bounded before cedar-wasm sees it', () => {
  it('refuses the attacker’s inputs with ERR_POLICY_TOO_COMPLEX, not a crash', () => {
    const parens = `${P}${'('.repeat(20_000)}true${')'.repeat(20_000)} };`;
    const ands = `${P}${Array<string>(5000).fill('true').join(' && ')} };`;
    for (const policies of [parens, ands])
      expect(codeOf(() => compilePolicySet({ policies }))).toBe('ERR_POLICY_TOO_COMPLEX');
    const ifs = `${P}${'if true then '.repeat(1000)}true${' else false'.repeat(1000)} };`;
    expect(codeOf(() => compilePolicySet({ policies: ifs }))).toBe('ERR_POLICY_TOO_COMPLEX');
    const record = `type T = ${'{a: '.repeat(1000)}Long${'}'.repeat(1000)}; entity A;`;
    expect(
      codeOf(() =>
        compilePolicySet({ policies: 'permit(principal, action, resource);', schema: record }),
      ),
    ).toBe('ERR_POLICY_TOO_COMPLEX');
  });

  it('accepts the worst text within the bounds (cedar-wasm does not fail on it)', () => {
    const deep = MAX_CEDAR_NESTING - 2;
    const ops = MAX_POLICY_OPERATORS;
    // `if`, `then` and `else` count one each.
    const ifs = Math.floor(ops / 3);
    const nested = `${P}${'('.repeat(deep)}${'if true then '.repeat(ifs)}true${' else false'.repeat(ifs)}${')'.repeat(deep)} };`;
    expect(parsePolicySet(nested)).toHaveLength(1);
    const chain = `${P}${'(['.repeat(deep / 2)}${Array<string>(ops - 1)
      .fill('true')
      .join(' && ')}${'])'.repeat(deep / 2)} };`;
    expect(parsePolicySet(chain)).toHaveLength(1);
  });

  it('counts outside string literals and comments, per policy', () => {
    const noisy = `// ${'('.repeat(500)} && && &&\n@id("${'('.repeat(500)}")\n${P}context has "${'.'.repeat(1000)}\\"(" };`;
    expect(parsePolicySet(noisy)).toHaveLength(1);
    const many = Array<string>(40)
      .fill(`${P}${Array<string>(100).fill('true').join(' && ')} };`)
      .join('\n');
    expect(parsePolicySet(many)).toHaveLength(40);
    const one = `${P}${Array<string>(MAX_POLICY_OPERATORS + 2)
      .fill('true')
      .join(' && ')} };`;
    expect(codeOf(() => parsePolicySet(one))).toBe('ERR_POLICY_TOO_COMPLEX');
  });

  it('an exception inside cedar-wasm is ERR_POLICY_ENGINE_FAILED, and the engine is reloaded', () => {
    // Past the bounds on purpose (straight to the engine): the WebAssembly instance traps.
    const crash = `${P}${'('.repeat(400)}true${')'.repeat(400)} };`;
    expect(codeOf(() => engine((cedar) => cedar.policySetTextToParts(crash)))).toBe(
      'ERR_POLICY_ENGINE_FAILED',
    );
    // A trapped instance fails every later call; the reloaded one parses.
    expect(parsePolicySet('permit(principal, action, resource);')).toHaveLength(1);
  });
});
