import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';

/**
 * The Buildroot package of os-image/buildroot copies the arm64 executable from dist/ like a
 * download (vouch.mk: VOUCH_SITE_METHOD = file) and checks it against the SHA-256 its
 * vouch.hash pins (Buildroot: support/download/check-hash), under the name vouch.mk gives it.
 */
export const buildrootPackageDir = 'os-image/buildroot/package/vouch';
export const buildrootSource = 'vouch-linux-arm64';

/** Pins `executable` in `hashFile`, the format of Buildroot's .hash files. */
export async function pinExecutable(executable: string, hashFile: string): Promise<string> {
  const digest = createHash('sha256')
    .update(await readFile(executable))
    .digest('hex');
  await writeFile(
    hashFile,
    `# Locally computed by npm run build:buildroot\nsha256  ${digest}  ${buildrootSource}\n`,
  );
  return digest;
}
