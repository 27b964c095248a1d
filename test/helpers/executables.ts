import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildExecutable } from '../../scripts/sea/executable';
import { cacheDir } from '../../scripts/sea/node';
import type { Arch } from '../../scripts/sea/targets';

/**
 * The single executables the tests run, built from dist/ (test/global-setup.ts) once for
 * each content of what goes into them: dist/'s bundles, and how an executable is made
 * (scripts/sea/, with the pinned Node; scripts/lib/bundle.ts). They are kept in
 * node_modules/.cache/vouch-sea/test/<hash of that>/, so a run that changed none of it builds
 * nothing; one that did replaces them (~100 MB each).
 */
const testCache = join(cacheDir, 'test');

/** The executable for `arch`, built unless this content's is there. */
export async function testExecutable(arch: Arch): Promise<string> {
  const key = contentHash();
  const path = join(testCache, key, `vouch-linux-${arch}`);
  if (existsSync(path)) return path;
  for (const old of await readdir(testCache).catch(() => [])) {
    if (old !== key) await rm(join(testCache, old), { recursive: true, force: true });
  }
  await mkdir(join(testCache, key), { recursive: true });
  // Complete or absent under its name, whatever stops the build.
  const building = `${path}.${process.pid}`;
  await buildExecutable(arch, building);
  await rename(building, path);
  return path;
}

function contentHash(): string {
  const files = [
    ...readdirSync('dist')
      .filter((name) => name.endsWith('.cjs'))
      .map((name) => join('dist', name)),
    ...readdirSync('scripts/sea').map((name) => join('scripts/sea', name)),
    'scripts/lib/bundle.ts',
  ];
  const hash = createHash('sha256');
  for (const file of files.sort()) {
    const content = readFileSync(file);
    hash.update(`${file}\0${content.length}\0`).update(content);
  }
  return hash.digest('hex').slice(0, 16);
}
