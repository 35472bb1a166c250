// The dashboard's build: `npm run build` writes it to dist/dashboard/, which `mandate dashboard`
// (and later `mandate up`) serves. JSX through esbuild's automatic runtime with Preact: no plugin.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root: here,
  base: './',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: fileURLToPath(new URL('../dist/dashboard', import.meta.url)),
    emptyOutDir: true,
    // The admin API's Content-Security-Policy allows only same-origin scripts: no inline module preload polyfill.
    modulePreload: { polyfill: false },
    reportCompressedSize: false,
  },
});
