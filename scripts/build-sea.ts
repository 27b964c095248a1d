/**
 * `npm run build:sea -- --arch arm64|armv7|x64` (repeatable; all three without it): the
 * single executables dist/vouch-linux-<arch> (scripts/sea/executable.ts), from dist/, which
 * `npm run build:sea` builds first.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { archArgs } from './lib/arch-args';
import { outdir } from './lib/bundle';
import { buildExecutable } from './sea/executable';
import { arches } from './sea/targets';

const usage = `Usage: npm run build:sea [-- --arch ${arches.join('|')} ...]
Builds dist/vouch-linux-<arch>, vouch with Node inside (docs/executables.md); all three
without --arch. Needs qemu-user-static, the arm cross libraries and binutils.`;
for (const arch of archArgs(usage, arches)) {
  const started = performance.now();
  const out = join(outdir, `vouch-linux-${arch}`);
  await buildExecutable(arch, out);
  const { size } = await stat(out);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(`${out}: ${(size / 1e6).toFixed(1)} MB, built in ${seconds} s\n`);
}
