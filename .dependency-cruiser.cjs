// The layer table of DESIGN.md §2 (kept identical in docs/architecture.md): a folder under src/
// may import only itself and the folders listed for it.
const layers = {
  core: [],
  encoding: ['core'],
  crypto: ['core', 'encoding'],
  vault: ['core', 'encoding', 'crypto'],
  identity: ['core', 'encoding', 'crypto', 'vault'],
  credentials: ['core', 'encoding', 'crypto', 'vault', 'identity'],
  routing: ['core', 'encoding'],
  channel: ['core', 'encoding', 'crypto', 'vault', 'identity', 'credentials', 'routing'],
  policy: ['core', 'encoding', 'crypto'],
  gates: ['core', 'encoding', 'crypto', 'identity', 'credentials', 'channel', 'policy'],
  audit: ['core', 'encoding', 'crypto', 'vault', 'identity', 'credentials'],
  broker: ['core', 'encoding', 'crypto', 'vault', 'identity', 'credentials', 'gates', 'audit'],
  store: [
    'core',
    'encoding',
    'crypto',
    'vault',
    'identity',
    'credentials',
    'routing',
    'channel',
    'policy',
    'gates',
    'audit',
    'broker',
  ],
  bus: ['core', 'encoding', 'policy', 'credentials'],
  node: null,
  cli: null,
  mcp: null,
};
const all = Object.keys(layers);

const forbidden = Object.entries(layers)
  .filter(([, allowed]) => allowed !== null)
  .map(([layer, allowed]) => {
    const banned = all.filter((l) => l !== layer && !allowed.includes(l));
    return {
      name: `layer-${layer}`,
      comment: `src/${layer} may import only: ${allowed.join(', ') || '(nothing)'}`,
      severity: 'error',
      from: { path: `^src/${layer}/` },
      to: { path: `^src/(${banned.join('|')})/` },
    };
  });

forbidden.push(
  {
    name: 'no-circular',
    severity: 'error',
    from: {},
    to: { circular: true },
  },
  {
    name: 'native-crypto-only-in-crypto-and-vault',
    comment: 'node:crypto and sodium-native are imported only in src/crypto and src/vault',
    severity: 'error',
    from: { path: '^src/', pathNot: '^src/(crypto|vault)/' },
    to: { path: '^(crypto|sodium-native)$|node_modules/sodium-native' },
  },
  {
    // docs/architecture.md, "Public API and internal barrels": another folder's files are
    // reached only through its index.ts (the public API, exported by package.json) or its
    // internal.ts (shared with the layers above, never exported). Tests may import any file.
    name: 'cross-folder-through-index',
    comment: 'import another folder of src/ only through its index.ts or internal.ts',
    severity: 'error',
    from: { path: '^src/([^/]+)/', pathNot: '\\.test\\.ts$' },
    to: { path: '^src/[^/]+/', pathNot: '^src/($1/|[^/]+/(index|internal)\\.ts$)' },
  },
  {
    name: 'root-index-public-only',
    comment: "src/index.ts (the package root export) re-exports only the folders' public indexes",
    severity: 'error',
    from: { path: '^src/index\\.ts$' },
    to: { path: '^src/', pathNot: '^src/[^/]+/index\\.ts$' },
  },
  {
    name: 'src-not-to-tests',
    severity: 'error',
    from: { path: '^src/', pathNot: '\\.test\\.ts$' },
    to: { path: '(^test/|\\.test\\.ts$)' },
  },
);

module.exports = {
  forbidden,
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.js'],
    },
  },
};
