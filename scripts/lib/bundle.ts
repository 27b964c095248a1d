import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { BuildOptions, Plugin } from 'esbuild';

/**
 * What the bundles of dist/ (scripts/build.ts) and the single executables' main script
 * (scripts/sea/) are made with.
 */

export const outdir = 'dist';

// CommonJS has no import.meta: point import.meta.url at the bundle file itself, so code that
// finds files beside it (the hash pool's dist/hash.worker.cjs) works from dist/ as from source.
export const importMetaUrl =
  "const importMetaUrl = require('node:url').pathToFileURL(__filename).href;";

/**
 * zod exports its error messages in 40-odd languages (`z.locales`), 0.3 of the CLI's 1.3 MB;
 * vouch speaks English, the locale zod configures by default: the others are left out.
 */
export const zodEnglishOnly: Plugin = {
  name: 'zod-english-only',
  setup(plugin) {
    plugin.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (file) => ({
      contents: "export { default as en } from './en.js';",
      resolveDir: dirname(file.path),
    }));
  },
};

export const common: BuildOptions = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: 'linked',
  legalComments: 'linked',
  logLevel: 'warning',
  // Node reads and compiles the whole bundle at every start: less text starts faster and
  // smaller (measured: docs/performance.md "Start-up"). Identifiers are
  // kept, so stack traces stay readable without the source map.
  minifyWhitespace: true,
  minifySyntax: true,
  define: { 'import.meta.url': 'importMetaUrl' },
  banner: { js: importMetaUrl },
  // dockerode → ssh2 (for ssh:// Docker hosts) tries two optional native addons inside
  // try/catch and falls back to JavaScript: leave them out, so the bundle stays portable.
  external: ['cpu-features', '*.node'],
  plugins: [zodEnglishOnly],
};

/** The CLI: dist/cli.cjs, and the main script of a single executable. */
export const cli: BuildOptions = {
  ...common,
  entryPoints: ['agent/cli/main.ts'],
  // import() becomes require(): code run from a V8 code cache (the launcher) has no
  // dynamic-import host on Node 20, and the one module loaded later is CommonJS anyway.
  supported: { 'dynamic-import': false },
};

/**
 * Libraries only some commands load, each a bundle of its own beside the CLI's, so that
 * Node does not compile them at every start of every command (nor hold them in the code
 * cache): dockerode (with ssh2, grpc-js and protobufjs behind it: 1.1 of the CLI's 2.5 MB),
 * loaded by the Docker commands (`await import('dockerode')`), and MQTT.js, loaded by the
 * agent when it reports over MQTT (`await import('mqtt')`).
 */
export const apart = ['dockerode', 'mqtt'] as const;

/** Every worker thread's entry (`*.worker.ts`), each bundled into dist/<name>.worker.cjs. */
export const workerEntries = ['agent', 'hw'].flatMap((root) =>
  readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.worker.ts'))
    .map((file) => join(root, file)),
);
