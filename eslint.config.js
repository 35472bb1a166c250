// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'eslint.config.js', '.dependency-cruiser.cjs'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unnecessary-condition': 'off',
      '@typescript-eslint/no-extraneous-class': 'off',
      // noUncheckedIndexedAccess makes every in-bounds index `T | undefined`; decoders and loops
      // assert in-bounds reads with `!` after checking lengths, which is what this rule forbids.
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-restricted-properties': [
        'error',
        {
          object: 'Math',
          property: 'random',
          message: 'use crypto randomBytes: Math.random is banned',
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ExportAllDeclaration',
          message: 'no export *: list the public API explicitly',
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/crypto/**', 'src/vault/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'node:crypto', message: 'crypto primitives live in src/crypto/' },
            { name: 'crypto', message: 'crypto primitives live in src/crypto/' },
            { name: 'sodium-native', message: 'crypto primitives live in src/crypto/' },
          ],
        },
      ],
    },
  },
);
