import { execFile } from 'node:child_process';
import { chmod, copyFile, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * os-image/systemd/vouch.service checked by systemd's own tools, in a root directory laid
 * out as a device's: systemd's units, the programs the unit runs, the unit itself.
 * `systemd-analyze verify` must find nothing; `systemd-analyze security` scores its
 * hardening (the figure os-image/README.md gives). deb.test.ts starts it under a booted
 * systemd, installed by the Debian package.
 */

const exec = promisify(execFile);
const unitPath = 'os-image/systemd/vouch.service';
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'vouch-systemd-'));
  const units = join(root, 'usr/lib/systemd/system');
  await cp('/usr/lib/systemd/system', units, { recursive: true });
  await copyFile(unitPath, join(units, 'vouch.service'));
  await mkdir(join(root, 'usr/bin'), { recursive: true });
  await writeFile(join(root, 'usr/bin/vouch'), '#!/bin/sh\n');
  await chmod(join(root, 'usr/bin/vouch'), 0o755);
  await mkdir(join(root, 'bin'), { recursive: true });
  await copyFile('/bin/kill', join(root, 'bin/kill'));
});
afterAll(() => rm(root, { recursive: true, force: true }));

async function verify(unitText: string): Promise<string> {
  await writeFile(join(root, 'usr/lib/systemd/system/vouch.service'), unitText);
  const { stderr } = await exec('systemd-analyze', [
    'verify',
    `--root=${root}`,
    'vouch.service',
  ]).catch((error: { stderr: string }) => ({ stderr: error.stderr || String(error) }));
  return stderr;
}

describe('the systemd unit', () => {
  it('passes systemd-analyze verify, which does find a broken one', async () => {
    const unit = await readFile(unitPath, 'utf8');
    expect(await verify(unit)).toBe('');
    expect(
      await verify(unit.replace('ExecStart=/usr/bin/vouch', 'ExecStart=/usr/bin/vouchx')),
    ).toMatch(/vouchx is not executable/);
    expect(await verify(unit.replace('Type=notify', 'Type=notfiy'))).toMatch(/Failed to parse/);
    await verify(unit);
  });

  it('has the settings the agent needs: notify type, state and runtime directories, restarts', async () => {
    const unit = await readFile(unitPath, 'utf8');
    for (const line of [
      'Type=notify',
      'NotifyAccess=all', // systemd-notify(1), a child, sends READY=1 (agent/device/agent/notify.ts)
      'ExecStart=/usr/bin/vouch agent --config /etc/vouch/agent.yaml',
      'ExecReload=/bin/kill -HUP $MAINPID',
      'User=vouch',
      'StateDirectory=vouch', // /var/lib/vouch, the default stateDir
      'RuntimeDirectory=vouch', // /run/vouch/api.sock, the default api.socket
      'Restart=always',
      'ProtectSystem=strict',
      'NoNewPrivileges=yes',
      'IOSchedulingClass=idle',
    ]) {
      expect(unit.split('\n'), line).toContain(line);
    }
    expect(unit).toMatch(/^MemoryMax=\d+M$/m);
    expect(unit).toMatch(/^Nice=\d+$/m);
    // V8's JIT maps machine code it writes executable: this setting would kill the agent.
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=yes/m);
  });

  it('scores 1.6 or better (lower) in systemd-analyze security', async () => {
    await verify(await readFile(unitPath, 'utf8'));
    const { stdout } = await exec('systemd-analyze', [
      'security',
      '--offline=yes',
      `--root=${root}`,
      'vouch.service',
    ]);
    const exposure = Number(
      /Overall exposure level for vouch\.service: ([\d.]+)/.exec(stdout)?.[1],
    );
    expect(exposure).toBeGreaterThan(0);
    expect(exposure).toBeLessThanOrEqual(1.6);
  });
});
