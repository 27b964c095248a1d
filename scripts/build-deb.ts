/**
 * `npm run build:deb -- --arch arm64|armhf|amd64` (repeatable; all three without it): the
 * Debian packages dist/vouch_<version>_<arch>.deb (scripts/deb/package.ts), from dist/,
 * which `npm run build:deb` builds first.
 */
import { stat } from 'node:fs/promises';
import { buildDeb, type DebArch, debArches } from './deb/package';
import { archArgs } from './lib/arch-args';
import { outdir } from './lib/bundle';

const names = Object.keys(debArches) as DebArch[];
const usage = `Usage: npm run build:deb [-- --arch ${names.join('|')} ...]
Builds dist/vouch_<version>_<arch>.deb (os-image/README.md "Debian package"); all three
without --arch. Needs dpkg-deb, readelf (binutils), and what npm run build:sea needs.`;
for (const arch of archArgs(usage, names)) {
  const deb = await buildDeb(arch, outdir);
  const { size } = await stat(deb);
  process.stdout.write(`${deb}: ${(size / 1e6).toFixed(1)} MB\n`);
}
