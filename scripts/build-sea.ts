/**
 * `npm run build:sea -- --arch arm64|armv7|x64` (repeatable; all three without it): the
 * single executables dist/vouch-linux-<arch> (scripts/sea/executable.ts), from dist/, which
 * `npm run build:sea` builds first.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { outdir } from './lib/bundle';
import { buildExecutable } from './sea/executable';
import { arches, isArch } from './sea/targets';

const { values } = parseArgs({ options: { arch: { type: 'string', multiple: true } } });
const wanted = values.arch ?? arches;
for (const arch of wanted) {
  if (!isArch(arch)) throw new Error(`--arch ${arch}: expected one of ${arches.join(', ')}`);
  const started = performance.now();
  const out = join(outdir, `vouch-linux-${arch}`);
  await buildExecutable(arch, out);
  const { size } = await stat(out);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(`${out}: ${(size / 1e6).toFixed(1)} MB, built in ${seconds} s\n`);
}
