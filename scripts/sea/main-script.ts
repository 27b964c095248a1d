import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { build, type Plugin } from 'esbuild';
import { apart, cli, outdir, workerEntries } from '../lib/bundle';

/**
 * A single executable's main script: the CLI, bundled as for dist/cli.cjs, carrying the
 * files dist/ holds beside that bundle — no file sits beside an executable. agent/embedded.ts
 * reads them: the worker bundles, started from their text (agent/workers/worker.ts), and
 * the libraries bundled apart, run by library.ts. It is built from dist/, which
 * `npm run build` makes first.
 *
 * Where the target's Node has SEA assets, the files are assets of the blob, read when asked
 * for (`node:sea` getAsset); Node 20.11, the last armv7 build on npm, has none (they came in
 * 20.12.0 and 21.7.0: https://nodejs.org/api/single-executable-applications.html#assets),
 * so there their text is in the script.
 */

export type Storage = 'assets' | 'script';

/** The files carried, by name: what dist/ has beside cli.cjs. */
const embeddedFiles = [
  ...workerEntries.map((entry) => `${basename(entry, '.ts')}.cjs`),
  ...apart.map((library) => `${library}.cjs`),
];

/** Bundles the main script into `outfile`; returns the SEA config's `assets` (name → path). */
export async function bundleMainScript(
  outfile: string,
  storage: Storage,
): Promise<Record<string, string>> {
  const paths = Object.fromEntries(embeddedFiles.map((name) => [name, resolve(outdir, name)]));
  const embedded: Plugin = {
    name: 'embedded-files',
    setup(plugin) {
      plugin.onLoad({ filter: /[\\/]agent[\\/]embedded\.ts$/ }, async () => ({
        contents: await embeddedModule(paths, storage),
        loader: 'js',
      }));
    },
  };
  await build({
    ...cli,
    outfile,
    sourcemap: false,
    legalComments: 'none',
    plugins: [...(cli.plugins ?? []), embedded, librariesEmbedded],
  });
  return storage === 'assets' ? paths : {};
}

/** agent/embedded.ts in the executable: its files, from the blob's assets or from the script. */
async function embeddedModule(paths: Record<string, string>, storage: Storage): Promise<string> {
  if (storage === 'assets') {
    return (
      "import { getAsset } from 'node:sea';\n" +
      "export const embeddedFile = (name) => getAsset(name, 'utf8');\n"
    );
  }
  // Each text in a function of its own: V8 compiles a function, and makes a string of the
  // text in it, only when it is called.
  const texts = await Promise.all(
    Object.entries(paths).map(
      async ([name, path]) =>
        `${JSON.stringify(name)}: () => ${JSON.stringify(await readFile(path, 'utf8'))}`,
    ),
  );
  return (
    `const files = {\n${texts.join(',\n')}\n};\n` +
    'export const embeddedFile = (name) => files[name]?.();\n'
  );
}

/** `import('mqtt')` and `import('dockerode')` run the executable's copy of their bundle. */
const librariesEmbedded: Plugin = {
  name: 'libraries-embedded',
  setup(plugin) {
    const loader = join(import.meta.dirname, 'library.ts');
    plugin.onResolve({ filter: new RegExp(`^(${apart.join('|')})$`) }, ({ path }) => ({
      path,
      namespace: 'embedded-library',
    }));
    plugin.onLoad({ filter: /.*/, namespace: 'embedded-library' }, ({ path }) => ({
      contents: `module.exports = require(${JSON.stringify(loader)}).requireEmbedded(${JSON.stringify(`${path}.cjs`)});`,
      loader: 'js',
      resolveDir: import.meta.dirname,
    }));
  },
};
