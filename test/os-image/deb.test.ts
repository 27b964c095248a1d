import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { version } from '../../package.json';
import { buildDeb, type DebArch, debArches } from '../../scripts/deb/package';
import { testExecutable } from '../helpers/executables';

const exec = promisify(execFile);

/**
 * The Debian packages (scripts/deb/package.ts) for amd64 and arm64, from the tests'
 * single executables: checked by lintian, dpkg-deb and systemd-sysusers, and the amd64 one
 * unpacked and run, and installed with dpkg -i under a booted systemd, where the unit
 * starts the agent. (Installed with dpkg in an arm64 root file system: rootfs.test.ts.)
 */

const built = ['amd64', 'arm64'] as const satisfies readonly DebArch[];
let work: string;
const debs = {} as Record<(typeof built)[number], string>;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'vouch-deb-test-'));
  for (const arch of built) {
    const executable = await testExecutable(debArches[arch]);
    debs[arch] = await buildDeb(arch, work, { executable });
  }
}, 900_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe.each(built)('vouch_%s.deb', (arch) => {
  it('is named for its version and architecture', () => {
    expect(debs[arch]).toBe(join(work, `vouch_${version}_${arch}.deb`));
  });

  it('lintian: no error or warning but the commented overrides, each of them used', async () => {
    // --fail-on: exit 1 on an error or a warning lintian did not see overridden.
    const { stdout } = await exec('lintian', ['--fail-on', 'error,warning', '-I', debs[arch]]);
    expect(stdout.split('\n').filter((line) => /^[EW]: /.test(line))).toEqual([]);
    expect(stdout).not.toContain('unused-override');
  }, 300_000);

  it('control: the fields, the conffile, the maintainer scripts', async () => {
    const field = async (name: string) =>
      (await exec('dpkg-deb', ['--field', debs[arch], name])).stdout.trim();
    expect(await field('Package')).toBe('vouch');
    expect(await field('Version')).toBe(version);
    expect(await field('Architecture')).toBe(arch);
    expect(await field('Depends')).toBe('libc6 (>= 2.28), libstdc++6 (>= 5), libgcc-s1, adduser');
    // Installed-Size in KiB: the executable (~100 MiB) and a few small files.
    const kib = Number(await field('Installed-Size'));
    expect(kib).toBeGreaterThan(90_000);
    expect(kib).toBeLessThan(130_000);

    const control = join(work, `control-${arch}`);
    await exec('dpkg-deb', ['--control', debs[arch], control]);
    expect(await readFile(join(control, 'conffiles'), 'utf8')).toBe('/etc/vouch/agent.yaml\n');
    for (const script of ['postinst', 'prerm', 'postrm']) {
      // sh -n: parsed without being run; exits non-zero on a syntax error.
      await exec('sh', ['-n', join(control, script)]);
      await exec('test', ['-x', join(control, script)]);
    }
  });

  it('contents: every file owned by root, with its mode', async () => {
    const { stdout } = await exec('dpkg-deb', ['--contents', debs[arch]]);
    const files = Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((line) => line.split(/\s+/))
        .filter(([mode]) => mode?.startsWith('-'))
        .map(([mode, owner, , , , path]) => [path, `${mode} ${owner}`]),
    );
    expect(files).toEqual({
      './etc/vouch/agent.yaml': '-rw-r--r-- root/root',
      './usr/bin/vouch': '-rwxr-xr-x root/root',
      './usr/lib/systemd/system/vouch.service': '-rw-r--r-- root/root',
      './usr/lib/sysusers.d/vouch.conf': '-rw-r--r-- root/root',
      './usr/share/doc/vouch/README.Debian': '-rw-r--r-- root/root',
      './usr/share/doc/vouch/changelog.gz': '-rw-r--r-- root/root',
      './usr/share/doc/vouch/copyright': '-rw-r--r-- root/root',
      './usr/share/lintian/overrides/vouch': '-rw-r--r-- root/root',
      './usr/share/man/man1/vouch.1.gz': '-rw-r--r-- root/root',
    });
    expect(stdout.split('\n').filter((line) => line && !line.includes(' root/root '))).toEqual([]);
  });
});

describe('vouch_amd64.deb unpacked', () => {
  let root: string;
  beforeAll(async () => {
    root = join(work, 'root');
    await exec('dpkg-deb', ['--extract', debs.amd64, root]);
  });

  it('runs: its executable answers --version', async () => {
    const { stdout } = await exec(join(root, 'usr/bin/vouch'), ['--version']);
    expect(stdout.trim()).toBe(version);
  });

  it('its /etc/vouch/agent.yaml is valid and sets no root and no mirror', async () => {
    const config = join(root, 'etc/vouch/agent.yaml');
    const { stdout } = await exec(join(root, 'usr/bin/vouch'), [
      'config',
      '--config',
      config,
      '--output',
      'json',
    ]);
    const effective = JSON.parse(stdout) as Record<string, unknown>;
    expect(effective.mirrors).toEqual([]);
    expect(effective.root).toBeUndefined();
    expect(effective.stateDir).toBe('/var/lib/vouch');
    // A commented default: every setting is there to uncomment.
    const text = await readFile(config, 'utf8');
    expect(text).toMatch(/^# root: /m);
    // It names where it is installed, not where the package was staged.
    expect(text).toContain('# Check it with: vouch config --config /etc/vouch/agent.yaml\n');
  });

  it('systemd-sysusers makes the account vouch.service runs as', async () => {
    await exec('systemd-sysusers', [`--root=${root}`]);
    const passwd = await readFile(join(root, 'etc/passwd'), 'utf8');
    expect(passwd).toMatch(
      /^vouch:x:\d+:\d+:vouch content trust agent:\/var\/lib\/vouch:\/usr\/sbin\/nologin$/m,
    );
    const unit = await readFile(join(root, 'usr/lib/systemd/system/vouch.service'), 'utf8');
    expect(unit).toMatch(/^User=vouch$/m);
  });

  it('copyright: vouch, Node.js and every bundled library with its license', async () => {
    const copyright = await readFile(join(root, 'usr/share/doc/vouch/copyright'), 'utf8');
    expect(copyright).toMatch(
      /^Format: https:\/\/www\.debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\/$/m,
    );
    expect(copyright).toContain('Files: *\nCopyright: vouch contributors\nLicense: Apache-2.0\n');
    expect(copyright).toContain('License: Node.js\n Node.js is licensed for use as follows:');
    for (const library of ['commander', 'zod', 'yaml', 'pino', 'dockerode', 'mqtt']) {
      expect(copyright).toMatch(new RegExp(`^Files: node_modules/${library}/\\*$`, 'm'));
    }
    // DEP-5: a license named in a Files paragraph without its text has a License paragraph.
    const paragraphs = copyright.trimEnd().split('\n\n');
    const standalone = paragraphs
      .filter((p) => p.startsWith('License: '))
      .map((p) => p.split('\n')[0]);
    const bare = paragraphs
      .filter((p) => p.startsWith('Files: '))
      .map((p) => p.split('\n'))
      .filter((lines) => lines.at(-1)?.startsWith('License: '))
      .map((lines) => lines.at(-1));
    expect(bare).toContain('License: Apache-2.0');
    for (const license of bare) expect(standalone).toContain(license);
  });
});

describe('vouch_amd64.deb installed under a booted systemd (systemd-nspawn)', () => {
  let report: string;
  beforeAll(async () => {
    if (!existsSync('/usr/bin/systemd-nspawn')) {
      throw new Error('systemd-nspawn not found: apt-get install systemd-container');
    }
    report = await bootAndInstall(debs.amd64);
  }, 300_000);

  it('enables and starts the agent, as the vouch user in the docker group, to ready (Type=notify)', () => {
    expect(report).toContain('enabled=enabled');
    expect(report).toContain('active=active');
    expect(report).toMatch(/^groups=.*\(docker\)/m);
    // Real, effective, saved and file-system user IDs: all the vouch account's, not root's.
    expect(report).toMatch(/^process=Uid:\s+([1-9][0-9]*)\s+\1\s+\1\s+\1$/m);
    expect(report).toMatch(/^api\s+ok\s+listening on \/run\/vouch\/api\.sock/m);
  });

  it('reloads on systemctl reload (SIGHUP) and stays active', () => {
    expect(report).toContain('configuration reloaded');
    expect(report).toContain('after-reload=active');
  });

  it('would not run with MemoryDenyWriteExecute=yes, which the unit leaves out: V8 makes code executable', () => {
    expect(report).toContain('mdwe=signal');
    expect(report).toContain('plain=success');
  });
});

/**
 * Boots systemd in a container over this machine's root (an overlay whose writes go to a
 * tmpfs, so the machine is untouched), installs `deb` there with dpkg -i from a unit run at
 * boot, and returns what that unit saw, `name=value` lines; the container then powers off.
 */
async function bootAndInstall(deb: string): Promise<string> {
  const base = await mkdtemp('/mnt/vouch-nspawn-');
  const merged = join(base, 'merged');
  const mounted: string[] = [];
  try {
    await exec('mount', ['-t', 'tmpfs', 'tmpfs', base]);
    mounted.unshift(base);
    for (const dir of ['upper', 'work', 'merged']) await mkdir(join(base, dir));
    const layers = `lowerdir=/,upperdir=${join(base, 'upper')},workdir=${join(base, 'work')}`;
    await exec('mount', ['-t', 'overlay', 'overlay', '-o', layers, merged]);
    mounted.unshift(merged);
    await copyFile(deb, join(merged, 'root/vouch.deb'));
    const probe = join(merged, 'root/probe.sh');
    await writeFile(
      probe,
      [
        '#!/bin/sh',
        'exec > /root/report 2>&1',
        // A container image's policy-rc.d forbids starting services; a device has none.
        'rm -f /usr/sbin/policy-rc.d',
        'dpkg -i /root/vouch.deb',
        'echo "enabled=$(systemctl is-enabled vouch)"',
        'echo "active=$(systemctl is-active vouch)"',
        'echo "groups=$(id vouch)"',
        'echo "process=$(grep Uid: /proc/$(systemctl show -p MainPID --value vouch)/status)"',
        'vouch agent status',
        'systemctl reload vouch && sleep 2',
        'echo "after-reload=$(systemctl is-active vouch)"',
        'journalctl -u vouch --no-pager -o cat | grep -o "configuration reloaded"',
        'systemd-run --wait -p MemoryDenyWriteExecute=yes /usr/bin/vouch --version 2>&1 | sed -n "s/^Finished with result: /mdwe=/p"',
        'systemd-run --wait /usr/bin/vouch --version 2>&1 | sed -n "s/^Finished with result: /plain=/p"',
        'echo done',
      ].join('\n'),
    );
    await chmod(probe, 0o755);
    const units = join(merged, 'etc/systemd/system');
    await mkdir(join(units, 'multi-user.target.wants'), { recursive: true });
    await writeFile(
      join(units, 'vouch-probe.service'),
      '[Service]\nType=oneshot\nExecStart=/root/probe.sh\nExecStartPost=systemctl poweroff\n',
    );
    await symlink(
      '../vouch-probe.service',
      join(units, 'multi-user.target.wants/vouch-probe.service'),
    );
    await exec(
      'timeout',
      [
        '240',
        'systemd-nspawn',
        `--directory=${merged}`,
        '--register=no',
        '--keep-unit',
        '--link-journal=no',
        '--boot',
      ],
      { maxBuffer: 64 * 2 ** 20 },
    ).catch((error: { code?: number }) => error);
    const report = await readFile(join(merged, 'root/report'), 'utf8').catch(() => '');
    if (!report.includes('\ndone\n')) throw new Error(`the probe did not finish:\n${report}`);
    return report;
  } finally {
    for (const dir of mounted) await exec('umount', [dir]);
    await rm(base, { recursive: true, force: true });
  }
}
