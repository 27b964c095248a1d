import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { configTemplate } from '../../agent/config-template';
import { version } from '../../package.json';
import { buildExecutable } from '../sea/executable';
import type { Arch } from '../sea/targets';
import { copyright } from './copyright';
import { librariesOf } from './depends';

const exec = promisify(execFile);

/** Debian architecture → the single executable built for it (scripts/sea/targets.ts). */
export const debArches = { arm64: 'arm64', armhf: 'armv7', amd64: 'x64' } as const satisfies Record<
  string,
  Arch
>;
export type DebArch = keyof typeof debArches;

/** The package's own files, beside the systemd unit in os-image/. */
const debianDir = 'os-image/debian';
const maintainerScripts = ['postinst', 'prerm', 'postrm'];
const conffile = '/etc/vouch/agent.yaml';

/**
 * dist/ must be built (`npm run build:deb` does). `executable`: the single executable to
 * put in, else one is built; never stripped (scripts/sea/executable.ts: the program dies).
 */
export async function buildDeb(
  arch: DebArch,
  outDir: string,
  { executable }: { executable?: string } = {},
): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), `vouch-deb-${arch}-`));
  try {
    const put = async (path: string, content: string | Buffer, mode = 0o644) => {
      const file = join(root, path);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, content);
      await chmod(file, mode);
    };
    const bin = join(root, 'usr/bin/vouch');
    await mkdir(dirname(bin), { recursive: true });
    if (executable) await copyFile(executable, bin);
    else await buildExecutable(debArches[arch], bin);
    await chmod(bin, 0o755);

    const own = (name: string) => readFile(join(debianDir, name));
    await put(
      'usr/lib/systemd/system/vouch.service',
      await readFile('os-image/systemd/vouch.service'),
    );
    await put('usr/lib/sysusers.d/vouch.conf', await own('vouch.sysusers'));
    await put('usr/share/lintian/overrides/vouch', await own('vouch.lintian-overrides'));
    await put('usr/share/doc/vouch/README.Debian', await own('README.Debian'));
    await put('usr/share/doc/vouch/copyright', await copyright(debArches[arch]));
    const changelog = await own('changelog');
    if (!changelog.toString().startsWith(`vouch (${version}) `)) {
      throw new Error(`${debianDir}/changelog: its first entry is not version ${version}`);
    }
    // gzip -9n: no name or time in the header, so the same file gives the same bytes.
    await put('usr/share/doc/vouch/changelog.gz', gzipSync(changelog, { level: 9 }));
    await put('usr/share/man/man1/vouch.1.gz', gzipSync(await own('vouch.1'), { level: 9 }));
    // What `vouch config init` writes, naming the installed path (not this staging tree).
    await put(conffile, configTemplate(conffile, {}));

    // DEBIAN/: written after the tree, which md5sums and Installed-Size are of.
    const files = await filesUnder(root);
    const md5sums = await Promise.all(
      files.map(async (file) => {
        const md5 = createHash('md5')
          .update(await readFile(join(root, file)))
          .digest('hex');
        return `${md5}  ${file}\n`;
      }),
    );
    await put('DEBIAN/md5sums', md5sums.join(''));
    await put('DEBIAN/conffiles', `${conffile}\n`);
    await put('DEBIAN/control', control(arch, await installedSize(root), await librariesOf(bin)));
    for (const script of maintainerScripts) await put(`DEBIAN/${script}`, await own(script), 0o755);
    await dirModes(root);

    await mkdir(outDir, { recursive: true });
    const deb = join(outDir, `vouch_${version}_${arch}.deb`);
    // The files' times in the package: the changelog's (reproducible builds' SOURCE_DATE_EPOCH).
    const date = changelog.toString().match(/^ -- .*> {2}(.+)$/m)?.[1] ?? '';
    const epoch = String(Math.floor(Date.parse(date) / 1000));
    await exec('dpkg-deb', ['--build', '--root-owner-group', root, deb], {
      env: { ...process.env, SOURCE_DATE_EPOCH: epoch },
      // xz of ~100 MB takes a minute or two on a slow machine; a hung one is stopped.
      timeout: 15 * 60_000,
    });
    return deb;
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

/** deb-control(5). Depends: the executable's libraries, and adduser for the postinst. */
function control(arch: DebArch, installedKiB: number, libraries: string): string {
  return `Package: vouch
Version: ${version}
Architecture: ${arch}
Maintainer: vouch maintainers <maintainers@users.noreply.r-seed-4b4108ef.example>
Installed-Size: ${installedKiB}
Depends: ${libraries}, adduser
Section: admin
Priority: optional
Description: content trust agent for devices running containers
 vouch checks what runs on a device (container images, files) against signed
 statements in a verifiable, append-only log, and keeps checking offline: the
 device holds a verified copy of the log's state, synced from mirrors.
 .
 This package runs the agent as a systemd service under its own account. It is
 a single executable with its own Node.js runtime inside.
`;
}

/** Paths of the regular files, relative to root, without DEBIAN/. */
async function filesUnder(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .filter((path) => !path.startsWith('DEBIAN/'))
    .sort();
}

/** In KiB as dpkg-gencontrol counts: each file rounded up, each directory one. */
async function installedSize(root: string): Promise<number> {
  let kib = 0;
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    if (relative(root, path).startsWith('DEBIAN')) continue;
    kib += entry.isFile() ? Math.ceil((await stat(path)).size / 1024) : 1;
  }
  return kib;
}

/** 0755 directories, whatever the umask. */
async function dirModes(root: string): Promise<void> {
  await chmod(root, 0o755);
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (entry.isDirectory()) await chmod(join(entry.parentPath, entry.name), 0o755);
  }
}
