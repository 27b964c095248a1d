import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Arch } from './targets';

const exec = promisify(execFile);

/**
 * The Node a single executable is made of: the official build from the npm registry's
 * node-linux-<arch> packages (bin/node), pinned in node-binaries.json by the package
 * tarball's integrity and the binary's SHA-256, which is checked at every build.
 */

const pinsFile = 'scripts/sea/node-binaries.json';
/** Downloaded binaries, outside git (and checked against their pin all the same). */
export const cacheDir = 'node_modules/.cache/vouch-sea';

interface Pin {
  readonly package: string;
  readonly version: string;
  /** The package tarball's, as the registry names it (`dist.integrity`). */
  readonly integrity: string;
  /** Of bin/node in the tarball, hex. */
  readonly sha256: string;
}

export interface NodeBinary {
  readonly path: string;
  readonly version: string;
  readonly sha256: string;
}

/**
 * The pinned Node for `arch`, downloaded once into the cache, checked every time. `pins` and
 * `cache` are for tests.
 */
export async function nodeBinary(
  arch: Arch,
  { pins = pinsFile, cache = cacheDir }: { pins?: string; cache?: string } = {},
): Promise<NodeBinary> {
  const pin = (JSON.parse(await readFile(pins, 'utf8')) as Record<Arch, Pin>)[arch];
  const path = join(cache, `${pin.package}-${pin.version}`, 'node');
  if (!existsSync(path)) await download(pin, 'bin/node', path, cache);
  const sha256 = await sha256Of(path);
  if (sha256 !== pin.sha256) {
    throw new Error(
      `${path} has SHA-256 ${sha256}, but ${pins} pins ${pin.sha256} for ` +
        `${pin.package}@${pin.version}: refusing to build with it (delete it to download it again)`,
    );
  }
  return { path, version: pin.version, sha256 };
}

/**
 * The LICENSE of the pinned Node for `arch`, from the package its binary comes from (the
 * Debian package's copyright file quotes it: scripts/deb/copyright.ts).
 */
export async function nodeLicense(
  arch: Arch,
): Promise<{ path: string; package: string; version: string }> {
  const pin = (JSON.parse(await readFile(pinsFile, 'utf8')) as Record<Arch, Pin>)[arch];
  const path = join(cacheDir, `${pin.package}-${pin.version}`, 'LICENSE');
  if (!existsSync(path)) await download(pin, 'LICENSE', path, cacheDir);
  return { path, version: pin.version, package: pin.package };
}

/** `member` of the pinned package, checked against its integrity, into `path`. */
async function download(pin: Pin, member: string, path: string, cache: string): Promise<void> {
  await mkdir(cache, { recursive: true });
  const dir = await mkdtemp(join(cache, 'download-'));
  try {
    // npm fetches the tarball from the registry and checks it against the registry's
    // integrity; the pin says it is still the tarball this repository was built with.
    const spec = `${pin.package}@${pin.version}`;
    const { stdout } = await exec('npm', ['pack', spec, '--json', '--pack-destination', dir], {
      maxBuffer: 64 * 2 ** 20,
    });
    const [packed] = JSON.parse(stdout) as { filename: string; integrity: string }[];
    if (packed?.integrity !== pin.integrity) {
      throw new Error(
        `${spec} from the registry has integrity ${packed?.integrity}, ` +
          `not the pinned ${pin.integrity}: refusing to use it`,
      );
    }
    await exec('tar', ['-xzf', join(dir, packed.filename), '-C', dir, `package/${member}`]);
    await mkdir(dirname(path), { recursive: true });
    await rename(join(dir, `package/${member}`), path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  return hash.digest('hex');
}
