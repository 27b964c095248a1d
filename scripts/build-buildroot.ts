/**
 * `npm run build:buildroot`: the arm64 single executable (`npm run build:sea -- --arch arm64`,
 * run first) pinned in the Buildroot package's vouch.hash, which a Buildroot build checks it
 * against. The executables are not bit-for-bit reproducible (V8's code cache in the blob), so
 * each build is pinned anew.
 */
import { join } from 'node:path';
import { buildrootPackageDir, buildrootSource, pinExecutable } from './lib/buildroot';
import { outdir } from './lib/bundle';

const hashFile = join(buildrootPackageDir, 'vouch.hash');
const digest = await pinExecutable(join(outdir, buildrootSource), hashFile);
process.stdout.write(`${hashFile}: sha256 ${digest} ${buildrootSource}\n`);
