import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire, wrap } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';

/**
 * dist/vouch.cjs: starts the CLI bundle dist/cli.cjs from the V8 code cache that the build
 * made beside it (dist/cli.cjs.cache), so that Node does not compile a megabyte of
 * JavaScript at every start (docs/performance.md "Start-up"). V8 checks the cache against the source and
 * its own version and flags, and compiles as usual when it does not fit; without the cache
 * the bundle is required as it is.
 */

const bundle = join(dirname(fileURLToPath(import.meta.url)), 'cli.cjs');
const cachePath = `${bundle}.cache`;
/** Set by scripts/build.ts: run once without the cache and write it at exit. */
const makeCache = process.env.VOUCH_MAKE_CODE_CACHE === cachePath;

function readCache(): Buffer | undefined {
  try {
    return readFileSync(cachePath);
  } catch {
    return undefined;
  }
}

const cachedData = makeCache ? undefined : readCache();
const require = createRequire(bundle);
if (cachedData === undefined && !makeCache) {
  require(bundle);
} else {
  // What Node's CommonJS loader does for a file, with the cached data given to V8.
  const script = new Script(wrap(readFileSync(bundle, 'utf8')), { filename: bundle, cachedData });
  if (makeCache) {
    // After the run: the functions it compiled are in the cache too.
    process.on('exit', () => writeFileSync(cachePath, script.createCachedData()));
  }
  const module = { exports: {}, filename: bundle, id: bundle, loaded: false };
  script.runInThisContext()(module.exports, require, module, bundle, dirname(bundle));
}
