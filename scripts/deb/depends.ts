import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/**
 * The Depends of the package, read from the executable it holds, so that it follows the Node
 * pinned in scripts/sea/node-binaries.json: each library the executable names (readelf -d:
 * NEEDED) as its Debian package, at the newest symbol version it uses (readelf -V). GNU
 * readelf reads any architecture's ELF, so one binutils does for all three packages.
 */
export async function librariesOf(executable: string): Promise<string> {
  const needed = [
    ...(await readelf('-d', executable)).matchAll(/\(NEEDED\)\s+Shared library: \[(.+?)\]/g),
  ].map((match) => match[1] as string);
  const versions = await readelf('-V', executable);
  const packages = new Set(needed.map(packageOf));
  return order
    .filter((name) => packages.has(name))
    .map((name) => {
      const floor = floors[name]?.(versions);
      return floor === undefined ? name : `${name} (>= ${floor})`;
    })
    .join(', ');
}

async function readelf(option: string, file: string): Promise<string> {
  return (await exec('readelf', ['-W', option, file], { maxBuffer: 16 * 2 ** 20 })).stdout;
}

/** The Debian packages, in the order Depends lists them. */
const order = ['libc6', 'libstdc++6', 'libgcc-s1', 'libatomic1'];

/** A library a Node binary names → its Debian package; a library not here is an error. */
function packageOf(library: string): string {
  if (/^(libc|libm|libdl|libpthread|librt)\.so\.\d+$|^ld-linux[-\w.]*\.so\.\d+$/.test(library)) {
    return 'libc6';
  }
  const known: Record<string, string> = {
    'libstdc++.so.6': 'libstdc++6',
    'libgcc_s.so.1': 'libgcc-s1',
    'libatomic.so.1': 'libatomic1',
  };
  const name = known[library];
  if (name === undefined) {
    throw new Error(
      `the executable needs ${library}: name its Debian package in scripts/deb/depends.ts`,
    );
  }
  return name;
}

/**
 * The first GCC release whose libstdc++ has GLIBCXX_3.4.<n> (the libstdc++ manual, "ABI
 * Policy and Guidelines"); Debian's libstdc++6 is versioned as its GCC.
 */
const gccOfGlibcxx: Record<number, string> = {
  21: '5',
  22: '6',
  23: '7',
  24: '7.2',
  25: '8',
  26: '9',
  27: '9.2',
  28: '9.3',
  29: '11',
  30: '12',
  31: '13',
  32: '13.2',
  33: '14',
};

/** The newest `prefix`<version> symbol version named in readelf -V's output. */
function newest(versions: string, prefix: string): number[] | undefined {
  const found = [...versions.matchAll(new RegExp(`\\b${prefix}_([0-9.]+)\\b`, 'g'))].map((match) =>
    (match[1] as string).split('.').map(Number),
  );
  return found.sort(compareVersions).at(-1);
}

function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const difference = (a[i] ?? 0) - (b[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return 0;
}

/** The lowest version of a package that has every symbol version the executable uses. */
const floors: Record<string, (versions: string) => string | undefined> = {
  libc6: (versions) => newest(versions, 'GLIBC')?.join('.'),
  'libstdc++6': (versions) => {
    const glibcxx = newest(versions, 'GLIBCXX');
    if (glibcxx === undefined || glibcxx.length < 3) return undefined;
    const gcc = gccOfGlibcxx[glibcxx[2] as number];
    if (gcc === undefined) {
      throw new Error(
        `the executable uses GLIBCXX_${glibcxx.join('.')}: add its GCC release to scripts/deb/depends.ts`,
      );
    }
    return gcc;
  },
};
