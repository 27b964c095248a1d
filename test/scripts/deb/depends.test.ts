import { describe, expect, it } from 'vitest';
import { librariesOf } from '../../../scripts/deb/depends';
import { nodeBinary } from '../../../scripts/sea/node';
import type { Arch } from '../../../scripts/sea/targets';

/**
 * The packages' Depends, read from the pinned Node binaries (scripts/sea/node-binaries.json)
 * with readelf: what their libraries and symbol versions need, on Debian.
 */
describe('librariesOf', () => {
  it.each([
    ['arm64', 'libc6 (>= 2.28), libstdc++6 (>= 5), libgcc-s1'],
    ['x64', 'libc6 (>= 2.28), libstdc++6 (>= 5), libgcc-s1'],
    // Node 20 on armv7 uses GLIBCXX_3.4.26 (GCC 9's libstdc++) and libatomic.
    ['armv7', 'libc6 (>= 2.28), libstdc++6 (>= 9), libgcc-s1, libatomic1'],
  ] as const)(
    'the pinned Node for %s',
    async (arch: Arch, depends) => {
      const { path } = await nodeBinary(arch);
      expect(await librariesOf(path)).toBe(depends);
    },
    300_000,
  );

  it('names a library it has no Debian package for, rather than leaving it out', async () => {
    // OpenSSL's command needs libssl.so.3 and libcrypto.so.3, which no Node binary does.
    await expect(librariesOf('/usr/bin/openssl')).rejects.toThrow(
      /needs libssl\.so\.3: name its Debian package/,
    );
  });

  it('fails on a file that is not ELF', async () => {
    await expect(librariesOf('package.json')).rejects.toThrow(/readelf/);
  });
});
