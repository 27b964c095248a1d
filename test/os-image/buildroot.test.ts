import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFile,
  copyFile,
  cp,
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, expect, it } from 'vitest';
import { version } from '../../package.json';
import { buildrootPackageDir, buildrootSource, pinExecutable } from '../../scripts/lib/buildroot';
import { requireBinary } from '../../scripts/lib/services';
import { commandFor, stripFor } from '../../scripts/sea/targets';
import { testExecutable } from '../helpers/executables';
import { describeWith } from '../helpers/services';

/**
 * The Buildroot package, os-image/buildroot (a BR2_EXTERNAL tree), run with real tools short
 * of Buildroot itself, which no registry CI reaches carries: its Config.in read by the Linux
 * kconfig tools (Debian's kconfig-frontends, the Kconfig Buildroot's own is a copy of) under a
 * stand-in of Buildroot's top-level options; the .config they write, with vouch.mk, run by GNU
 * make through buildroot-stand-in.mk (Buildroot's download hash check, generic-package's
 * install steps and target-finalize's strip, reduced); then on the target directory that
 * leaves: the arm64 executable run under qemu, `systemctl --root preset-all` (what Buildroot
 * runs before making the root filesystem), `systemd-tmpfiles --root --create` and
 * `systemd-analyze verify --root` on the unit with its HA OS drop-in. A real Buildroot build
 * (toolchain, rootfs image) is not made here.
 */

const exec = promisify(execFile);
const standIn = resolve('test/os-image/buildroot-stand-in.mk');

/** The options of Buildroot's top-level Config.in the package's Config.in and vouch.mk read. */
const topOptions = `
config BR2_aarch64
	bool "aarch64"
config BR2_arm
	bool "arm"
config BR2_INIT_SYSTEMD
	bool "systemd"
config BR2_TOOLCHAIN_USES_GLIBC
	bool "glibc"
config BR2_INSTALL_LIBSTDCPP
	bool "C++"
config BR2_PACKAGE_JQ
	bool "jq"
config BR2_STRIP_strip
	bool "strip target binaries"
	default y
config BR2_STRIP_EXCLUDE_FILES
	string "executables that should not be stripped"
	default ""
	depends on BR2_STRIP_strip
`;

/** HA OS's: an aarch64 glibc toolchain with C++, systemd, vouch left unstripped. */
const haosDefconfig = [
  'BR2_aarch64=y',
  'BR2_INIT_SYSTEMD=y',
  'BR2_TOOLCHAIN_USES_GLIBC=y',
  'BR2_INSTALL_LIBSTDCPP=y',
  'BR2_STRIP_EXCLUDE_FILES="vouch"',
  'BR2_PACKAGE_VOUCH=y',
];

let tree: string;
/** The source the HA OS build copied, and the target directory it filled. */
let source: string;
let target: string;
/** That build's .config. */
let config: string;

/**
 * The repository's layout in `name`: the external tree, the unit and the RAUC handler it
 * installs, and dist/ with the arm64 executable, pinned in vouch.hash as `npm run
 * build:buildroot` does.
 */
async function layout(name: string): Promise<string> {
  const root = join(tree, name);
  for (const dir of ['buildroot', 'systemd', 'rauc']) {
    await cp(join('os-image', dir), join(root, 'os-image', dir), { recursive: true });
  }
  await mkdir(join(root, 'dist'));
  await copyFile(await testExecutable('arm64'), join(root, 'dist', buildrootSource));
  await pinExecutable(
    join(root, 'dist', buildrootSource),
    join(root, 'os-image/buildroot/package/vouch/vouch.hash'),
  );
  return root;
}

const externalOf = (root: string) => join(root, 'os-image/buildroot');

/**
 * The .config kconfig-conf writes from `defconfig` lines, as Buildroot's `make defconfig`
 * does: the external tree's path as Buildroot declares it (support/scripts/br2-external),
 * options without the CONFIG_ prefix.
 */
async function kconfig(name: string, defconfig: readonly string[]): Promise<string> {
  const dir = join(tree, name);
  const external = externalOf(join(tree, 'haos'));
  await mkdir(dir);
  await writeFile(
    join(dir, 'Config.in'),
    `mainmenu "Buildroot stand-in"\n${topOptions}
config BR2_EXTERNAL_VOUCH_PATH
	string
	default "${external}"
menu "External options"
source "${external}/Config.in"
endmenu
`,
  );
  await writeFile(join(dir, 'defconfig'), `${defconfig.join('\n')}\n`);
  await exec('kconfig-conf', ['--defconfig=defconfig', 'Config.in'], {
    cwd: dir,
    env: { ...process.env, CONFIG_: '', KCONFIG_CONFIG: join(dir, '.config') },
  });
  return join(dir, '.config');
}

/** GNU make on the vouch.mk of layout `root` through the stand-in, building there. */
function make(dotConfig: string, root: string, ...goals: string[]) {
  return exec('make', [
    '-f',
    standIn,
    `BR2_CONFIG=${dotConfig}`,
    `BR2_EXTERNAL_VOUCH_PATH=${externalOf(root)}`,
    `BUILD_DIR=${join(root, 'build')}`,
    `DL_DIR=${join(root, 'dl')}`,
    `TARGET_DIR=${join(root, 'target')}`,
    `STRIPCMD=${stripFor('arm64')}`,
    ...goals,
  ]);
}

async function sha256Of(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** The arm64 executable at `program`, under qemu. */
function runArm64(program: string, ...args: string[]) {
  const vouch = commandFor('arm64', program, args);
  return exec(vouch.file, [...vouch.args], { env: { ...process.env, ...vouch.env } }).catch(
    (error) => error,
  );
}

describeWith('qemu', 'the Buildroot package for Home Assistant OS', () => {
  beforeAll(async () => {
    requireBinary('kconfig');
    requireBinary('qemu');
    tree = await mkdtemp(join(tmpdir(), 'vouch-buildroot-'));
    const haos = await layout('haos');
    source = join(haos, 'dist', buildrootSource);
    target = join(haos, 'target');
    config = await kconfig('haos-config', haosDefconfig);
    await make(config, haos, 'vouch', 'target-finalize');
  }, 600_000);

  it('is offered on aarch64 with systemd and a glibc toolchain with C++; else Kconfig says why', async () => {
    expect(await readFile(config, 'utf8')).toMatch(/^BR2_PACKAGE_VOUCH=y$/m);
    const noSystemd = await kconfig(
      'no-systemd',
      haosDefconfig.filter((line) => line !== 'BR2_INIT_SYSTEMD=y'),
    );
    const text = await readFile(noSystemd, 'utf8');
    expect(text).not.toMatch(/BR2_PACKAGE_VOUCH/);
    expect(text).toMatch(/^# vouch needs systemd and a glibc toolchain w\/ C\+\+$/m);
    const arm = await kconfig('arm', [
      'BR2_arm=y',
      ...haosDefconfig.filter((line) => line !== 'BR2_aarch64=y'),
    ]);
    expect(await readFile(arm, 'utf8')).not.toMatch(/vouch needs|BR2_PACKAGE_VOUCH/);
  });

  it('selects jq, which the RAUC handler it installs needs', async () => {
    expect(await readFile(config, 'utf8')).toMatch(/^BR2_PACKAGE_JQ=y$/m);
    const handler = await lstat(join(target, 'usr/libexec/vouch/rauc-pre-install'));
    expect(handler.mode & 0o777).toBe(0o755);
  });

  it('installs the executable exactly as pinned (not stripped), and it runs', async () => {
    const installed = join(target, 'usr/bin/vouch');
    expect(await sha256Of(installed)).toBe(await sha256Of(source));
    const { code, stdout } = await runArm64(installed, '--version');
    expect({ code: code ?? 0, stdout }).toEqual({ code: 0, stdout: `${version}\n` });
  });

  it('is why BR2_STRIP_EXCLUDE_FILES must name it: stripped, the executable crashes', async () => {
    // The same package, its check off (BR_BUILDING empty) and nothing excluded from strip.
    const unchecked = await kconfig(
      'stripped-config',
      haosDefconfig.filter((line) => !line.startsWith('BR2_STRIP_EXCLUDE_FILES')),
    );
    const root = await layout('stripped');
    await make(unchecked, root, 'BR_BUILDING=', 'vouch', 'target-finalize');
    const stripped = join(root, 'target/usr/bin/vouch');
    expect(await sha256Of(stripped)).not.toBe(await sha256Of(source));
    const { code, stdout } = await runArm64(stripped, '--version');
    expect(stdout).not.toBe(`${version}\n`);
    expect(code).not.toBe(0);
  }, 300_000);

  it('stops the build when BR2_STRIP_EXCLUDE_FILES does not name it', async () => {
    const unexcluded = await kconfig(
      'unexcluded',
      haosDefconfig.filter((line) => !line.startsWith('BR2_STRIP_EXCLUDE_FILES')),
    );
    const root = join(tree, 'haos');
    const error = await make(unexcluded, root, 'vouch').catch((failure) => failure);
    expect(error.stderr).toContain(
      'vouch crashes once stripped: add "vouch" to BR2_STRIP_EXCLUDE_FILES',
    );
  });

  it('refuses an executable that is not the one vouch.hash pins', async () => {
    const root = await layout('other');
    const dist = join(root, 'dist', buildrootSource);
    // One more byte at its end.
    await appendFile(dist, '\0');
    const error = await make(config, root, 'vouch').catch((failure) => failure);
    expect(error.code).not.toBe(0);
    expect(error.stdout).toContain('FAILED');
    await expect(lstat(join(root, 'target/usr/bin/vouch'))).rejects.toThrow();
  }, 120_000);

  it('pins in vouch.hash the file vouch.mk downloads, in the committed file too', async () => {
    const { stdout } = await make(
      config,
      join(tree, 'haos'),
      'VARS=VOUCH_SOURCE VOUCH_SITE_METHOD',
      'printvars',
    );
    expect(stdout).toBe(`VOUCH_SOURCE=${buildrootSource}\nVOUCH_SITE_METHOD=file\n`);
    const line = /^sha256 {2}[0-9a-f]{64} {2}(\S+)$/m;
    const committed = await readFile(join(buildrootPackageDir, 'vouch.hash'), 'utf8');
    expect(committed.match(line)?.[1]).toBe(buildrootSource);
    const pinned = await readFile(
      join(externalOf(join(tree, 'haos')), 'package/vouch/vouch.hash'),
      'utf8',
    );
    expect(pinned).toContain(`sha256  ${await sha256Of(source)}  ${buildrootSource}\n`);
  });

  it('configures the state on the data partition and the Docker socket of HA OS', async () => {
    const agentYaml = join(target, 'etc/vouch/agent.yaml');
    const { code, stdout, stderr } = await runArm64(
      join(target, 'usr/bin/vouch'),
      'config',
      '--config',
      agentYaml,
      '-o',
      'json',
    );
    expect(code ?? 0, stderr).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      stateDir: '/mnt/data/vouch',
      docker: { socket: '/run/docker.sock' },
    });
  });

  it('is enabled by the systemctl preset-all Buildroot runs on the target', async () => {
    // systemd's own last word (its 99-default.preset): what no preset file enables is not.
    await writeFile(join(target, 'usr/lib/systemd/system-preset/99-default.preset'), 'disable *\n');
    await exec('systemctl', [`--root=${target}`, 'preset-all']);
    const wants = join(target, 'etc/systemd/system/multi-user.target.wants/vouch.service');
    expect(await readlink(wants)).toBe('/usr/lib/systemd/system/vouch.service');
  });

  it('has the unit with its HA OS drop-in pass systemd-analyze verify, the state directory writable', async () => {
    // What the rest of an HA OS root filesystem would hold: systemd's own units, and the
    // programs the unit names besides vouch.
    const units = join(target, 'usr/lib/systemd/system');
    await cp('/usr/lib/systemd/system', units, { recursive: true, force: false });
    const unit = await readFile(join(units, 'vouch.service'), 'utf8');
    for (const [, program] of unit.matchAll(/^Exec\w+=[-+!@:]*(\/\S+)/gm)) {
      if (program && !program.startsWith('/usr/bin/vouch')) {
        await mkdir(join(target, program, '..'), { recursive: true });
        await copyFile(program, join(target, program));
      }
    }
    const verify = await exec('systemd-analyze', ['verify', `--root=${target}`, 'vouch.service']);
    expect(verify.stderr).toBe('');
    const dropIn = await readFile(join(units, 'vouch.service.d/haos.conf'), 'utf8');
    expect(dropIn).toMatch(/^StateDirectory=$/m);
    expect(dropIn).toMatch(/^ReadWritePaths=\/mnt\/data\/vouch$/m);
    expect(dropIn).toMatch(/^RequiresMountsFor=\/mnt\/data$/m);
    // The account, as Buildroot's mkusers makes it from VOUCH_USERS (user uid group gid
    // password home shell groups comment), then the directory ReadWritePaths needs, made at
    // boot by systemd-tmpfiles.
    const { stdout } = await make(config, join(tree, 'haos'), 'VARS=VOUCH_USERS', 'printvars');
    const [name, , group, , , , , groups] = stdout.replace(/^VOUCH_USERS=/, '').split(' ');
    expect({ name, group, groups }).toEqual({ name: 'vouch', group: 'vouch', groups: 'docker' });
    await mkdir(join(target, 'etc'), { recursive: true });
    await writeFile(
      join(target, 'etc/passwd'),
      'root:x:0:0::/root:/bin/sh\nvouch:x:990:990::/:/bin/false\n',
    );
    await writeFile(join(target, 'etc/group'), 'root:x:0:\nvouch:x:990:\ndocker:x:991:vouch\n');
    await exec('systemd-tmpfiles', ['--create', `--root=${target}`, 'vouch.conf']);
    const made = await lstat(join(target, 'mnt/data/vouch'));
    expect({ directory: made.isDirectory(), mode: made.mode & 0o777 }).toEqual({
      directory: true,
      mode: 0o700,
    });
    // Owned by the user the unit runs the agent as (User=, else root).
    const user = [...`${unit}\n${dropIn}`.matchAll(/^User=(.*)$/gm)].at(-1)?.[1] || 'root';
    expect({ user, uid: made.uid }).toEqual({ user: 'vouch', uid: 990 });
  });
});
