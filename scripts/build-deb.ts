/**
 * `npm run build:deb -- --arch arm64|armhf|amd64` (repeatable; all three without it): the
 * Debian packages dist/vouch_<version>_<arch>.deb (scripts/deb/package.ts), from dist/,
 * which `npm run build:deb` builds first.
 */
import { stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { buildDeb, debArches, isDebArch } from './deb/package';
import { outdir } from './lib/bundle';

const { values } = parseArgs({ options: { arch: { type: 'string', multiple: true } } });
const wanted = values.arch ?? Object.keys(debArches);
for (const arch of wanted) {
  if (!isDebArch(arch)) {
    throw new Error(`--arch ${arch}: expected one of ${Object.keys(debArches).join(', ')}`);
  }
  const deb = await buildDeb(arch, outdir);
  const { size } = await stat(deb);
  process.stdout.write(`${deb}: ${(size / 1e6).toFixed(1)} MB\n`);
}
