/**
 * Bundles the CLI into dist/cli.cjs (started by the launcher dist/vouch.cjs from a V8 code
 * cache, dist/cli.cjs.cache), dockerode and MQTT.js into dist/dockerode.cjs and
 * dist/mqtt.cjs, and every worker entry (`*.worker.ts`) into dist/<name>.cjs. CommonJS,
 * because a Node single executable application needs a CommonJS entry (scripts/sea/ makes
 * them from these bundles); one self-contained file per entry, so the same dist/ runs on
 * arm64, armv7 and x64 (no native addons). The options are in scripts/lib/bundle.ts.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join, resolve } from 'node:path';
import { type BuildOptions, build, type Plugin } from 'esbuild';
import { apart, cli, common, importMetaUrl, outdir, workerEntries } from './lib/bundle';

/** The libraries apart (scripts/lib/bundle.ts) are required from the files beside the CLI's. */
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

/** With esbuild's list of the files that went in (its metafile). */
const bundle = (options: BuildOptions) => build({ ...options, metafile: true });

const results = await Promise.all([
  bundle({
    ...cli,
    outfile: join(outdir, 'cli.cjs'),
    plugins: [...(cli.plugins ?? []), librariesApart],
  }),
  bundle({
    ...common,
    entryPoints: ['agent/cli/launcher.ts'],
    outfile: join(outdir, 'vouch.cjs'),
    banner: { js: `#!/usr/bin/env node\n${importMetaUrl}` },
  }),
  ...apart.map((library) =>
    bundle({
      ...common,
      entryPoints: [createRequire(import.meta.url).resolve(library)],
      outfile: join(outdir, `${library}.cjs`),
      plugins: [...(common.plugins ?? []), noSsh2],
    }),
  ),
  ...workerEntries.map((entry) =>
    bundle({
      ...common,
      entryPoints: [entry],
      outfile: join(outdir, `${basename(entry, '.ts')}.cjs`),
    }),
  ),
]);
chmodSync(join(outdir, 'vouch.cjs'), 0o755);
// Every source file in dist/'s bundles, relative to here: the npm libraries among them are
// what the Debian package's copyright file lists (scripts/deb/copyright.ts).
const inputs = new Set(results.flatMap((result) => Object.keys(result.metafile.inputs)));
writeFileSync(join(outdir, 'inputs.json'), `${JSON.stringify([...inputs].sort(), null, 1)}\n`);

// The V8 code cache the launcher starts the CLI from (agent/cli/launcher.ts): made by this
// Node, after a run of `vouch --help`, which compiles the program and every command, and
// loads every command's action too (Act in agent/cli/program.ts).
const cache = resolve(outdir, 'cli.cjs.cache');
rmSync(cache, { force: true });
execFileSync(process.execPath, [join(outdir, 'vouch.cjs'), '--help'], {
  env: { ...process.env, VOUCH_MAKE_CODE_CACHE: cache },
  stdio: 'ignore',
});
