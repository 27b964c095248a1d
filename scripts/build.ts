/**
 * Bundles the CLI into dist/cli.cjs (started by the launcher dist/vouch.cjs from a V8 code
 * cache, dist/cli.cjs.cache), dockerode and MQTT.js into dist/dockerode.cjs and
 * dist/mqtt.cjs, and every worker entry (`*.worker.ts`) into dist/<name>.cjs. CommonJS,
 * because a Node single executable application needs a CommonJS entry; one self-contained file per entry, so the same dist/ runs on arm64,
 * armv7 and x64 (no native addons).
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { type BuildOptions, build, type Plugin } from 'esbuild';

const outdir = 'dist';

// CommonJS has no import.meta: point import.meta.url at the bundle file itself, so code that
// finds files beside it (the hash pool's dist/hash.worker.cjs) works from dist/ as from source.
const importMetaUrl = "const importMetaUrl = require('node:url').pathToFileURL(__filename).href;";

/**
 * zod exports its error messages in 40-odd languages (`z.locales`), 0.3 of the CLI's 1.3 MB;
 * vouch speaks English, the locale zod configures by default: the others are left out.
 */
const zodEnglishOnly: Plugin = {
  name: 'zod-english-only',
  setup(plugin) {
    plugin.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, (file) => ({
      contents: "export { default as en } from './en.js';",
      resolveDir: dirname(file.path),
    }));
  },
};

const common: BuildOptions = {
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

/**
 * Libraries only some commands load, each a bundle of its own beside the CLI's, so that
 * Node does not compile them at every start of every command (nor hold them in the code
 * cache): dockerode (with ssh2, grpc-js and protobufjs behind it: 1.1 of the CLI's 2.5 MB),
 * loaded by the Docker commands (`await import('dockerode')`), and MQTT.js, loaded by the
 * agent when it reports over MQTT (`await import('mqtt')`).
 */
const apart = ['dockerode', 'mqtt'] as const;

const librariesApart: Plugin = {
  name: 'libraries-apart',
  setup(plugin) {
    plugin.onResolve({ filter: new RegExp(`^(${apart.join('|')})$`) }, ({ path }) => ({
      path: `./${path}.cjs`,
      external: true,
    }));
  },
};

/**
 * ssh2 serves only ssh:// Docker hosts, which vouch never connects to (content/docker.ts
 * takes unix:// and tcp://). Loading it costs ~8 MiB of RSS in every process that talks to
 * Docker (it instantiates a WebAssembly module at load): the bundle gets a stand-in that
 * refuses to connect instead.
 */
const noSsh2: Plugin = {
  name: 'no-ssh2',
  setup(plugin) {
    plugin.onResolve({ filter: /^ssh2$/ }, () => ({ path: 'ssh2', namespace: 'no-ssh2' }));
    plugin.onLoad({ filter: /.*/, namespace: 'no-ssh2' }, () => ({
      contents:
        'exports.Client = class { constructor() { ' +
        "throw new Error('vouch does not connect to ssh:// Docker hosts'); } };",
      loader: 'js',
    }));
  },
};

const workerEntries = ['agent', 'hw'].flatMap((root) =>
  readdirSync(root, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.worker.ts'))
    .map((file) => join(root, file)),
);

await Promise.all([
  build({
    ...common,
    entryPoints: ['agent/cli/main.ts'],
    outfile: join(outdir, 'cli.cjs'),
    plugins: [zodEnglishOnly, librariesApart],
    // import() becomes require(): code run from a V8 code cache (the launcher) has no
    // dynamic-import host on Node 20, and the one module loaded later is CommonJS anyway.
    supported: { 'dynamic-import': false },
  }),
  build({
    ...common,
    entryPoints: ['agent/cli/launcher.ts'],
    outfile: join(outdir, 'vouch.cjs'),
    banner: { js: `#!/usr/bin/env node\n${importMetaUrl}` },
  }),
  ...apart.map((library) =>
    build({
      ...common,
      entryPoints: [createRequire(import.meta.url).resolve(library)],
      outfile: join(outdir, `${library}.cjs`),
      plugins: [noSsh2],
    }),
  ),
  ...workerEntries.map((entry) =>
    build({
      ...common,
      entryPoints: [entry],
      outfile: join(outdir, `${basename(entry, '.ts')}.cjs`),
    }),
  ),
]);
chmodSync(join(outdir, 'vouch.cjs'), 0o755);

// The V8 code cache the launcher starts the CLI from (agent/cli/launcher.ts): made by this
// Node, after a run of `vouch --help`, which compiles the program and every command, and
// loads every command's action too (Act in agent/cli/program.ts).
const cache = resolve(outdir, 'cli.cjs.cache');
rmSync(cache, { force: true });
execFileSync(process.execPath, [join(outdir, 'vouch.cjs'), '--help'], {
  env: { ...process.env, VOUCH_MAKE_CODE_CACHE: cache },
  stdio: 'ignore',
});
