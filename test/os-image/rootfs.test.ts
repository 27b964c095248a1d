import type { ChildProcess } from 'node:child_process';
import { chmod, copyFile, mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { systemConfigPath } from '../../agent/config';
import { fileDigests } from '../../agent/content/digests';
import { agentRequest } from '../../agent/device/agent';
import { chunkedFrom } from '../../agent/device/verify/chunked';
import { version } from '../../package.json';
import { buildDeb } from '../../scripts/deb/package';
import { freePort, requireBinary, waitFor } from '../../scripts/lib/services';
import { serveLog } from '../device/agent/harness';
import { runCli } from '../helpers/cli';
import { grow, signerId, syncedDevice, testWorld, type World } from '../helpers/device';
import { testExecutable } from '../helpers/executables';
import { describeWith } from '../helpers/services';
import { signedStatement } from '../helpers/trust';
import { baseTarball, Rootfs, reachMirror, registerQemu } from './rootfs';

/**
 * vouch on a real arm64 Debian system (issue 17, item 7): a minimal bookworm root filesystem
 * (rootfs.ts) with vouch's arm64 package installed by dpkg, everything in it run in a chroot under qemu-user as on a
 * Raspberry Pi, as the package's user: a snapshot imported, files verified, and the agent started to ready and asked
 * for its status through its socket, from this machine, at the socket's path in the root
 * filesystem. `npm run test:os-image`; os-image/README.md "arm64 root filesystem test".
 */

/** Where the test's files are put in the root filesystem, readable by every user. */
const testDir = '/srv/vouch-test';
/** The user the package makes and its unit runs the agent as, its state and runtime directories. */
const user = 'vouch';
const stateDir = '/var/lib/vouch';
const runDir = '/run/vouch';
const socket = `${runDir}/api.sock`;

describeWith('rootfs', 'vouch in an arm64 Debian root filesystem, under qemu', () => {
  let world: World;
  let rootfs: Rootfs;
  let qemu: Awaited<ReturnType<typeof registerQemu>> | undefined;
  let log: Awaited<ReturnType<typeof serveLog>> | undefined;
  /** The package's .deb, in the root filesystem. */
  let deb: string;
  let trustedMerkle: string;

  const vouch = (...args: string[]) => rootfs.run(['/usr/bin/vouch', ...args], { user });

  beforeAll(async () => {
    requireBinary('rootfs');
    qemu = await registerQemu();
    const [tarball, executable] = await Promise.all([baseTarball(), testExecutable('arm64')]);
    rootfs = await Rootfs.unpack(tarball);
    const debs = '/var/cache/vouch';
    deb = join(debs, basename(await buildDeb('arm64', rootfs.path(debs), { executable })));

    // A publisher's log: a file signed trusted, another revoked; its snapshot and root.
    world = await testWorld();
    const files = rootfs.path(testDir);
    await mkdir(files, { recursive: true });
    await chmod(files, 0o755);
    const trusted = join(files, 'os.raucb');
    const revoked = join(files, 'old.raucb');
    await writeFile(trusted, 'an OS bundle');
    // Large enough to be hashed in chunks on the pool's worker threads.
    await truncate(trusted, chunkedFrom);
    await writeFile(revoked, 'an OS bundle found broken');
    const [trustedDigests, revokedDigests] = await fileDigests([trusted, revoked]);
    if (!trustedDigests || !revokedDigests) throw new Error('no digests');
    trustedMerkle = trustedDigests.merkle;
    const statement = (
      name: string,
      digests: { sha256: string; merkle: string },
      status: 'trusted' | 'revoked',
    ) =>
      signedStatement(world.signer, {
        signer: signerId,
        subjects: [{ name: `ghcr.io/example/${name}`, ...digests }],
        status,
      });
    await grow(world, 0, [
      statement('os.raucb', trustedDigests, 'trusted'),
      statement('old.raucb', revokedDigests, 'revoked'),
    ]);
    const exported = await runCli([
      'snapshot',
      'export',
      '--state-dir',
      await syncedDevice(world),
      '--out',
      join(files, 'snapshot.tar'),
    ]);
    expect(exported.exitCode, exported.stderr).toBe(0);
    await copyFile(world.rootPath, join(files, 'root.json'));
    log = await serveLog(world);
    // Longer than its children's own timeouts (rootfs.ts), which say what stalled.
  }, 45 * 60_000);

  afterAll(async () => {
    try {
      // Kills what a failed test left running in it (the agent) before removing it.
      await rootfs?.remove();
    } finally {
      await qemu?.unregister();
      await log?.stop();
    }
  }, 60_000);

  it('says clearly when the Debian mirror does not answer', async () => {
    const mirror = `http://127.0.0.1:${await freePort()}/debian`;
    await expect(reachMirror(mirror)).rejects.toThrow(
      `the Debian mirror does not answer (${mirror}/dists/bookworm/InRelease: Error: connect ECONNREFUSED`,
    );
  });

  it('is Debian 12 for arm64, its own programs run under qemu', async () => {
    expect(await rootfs.read('/etc/debian_version')).toMatch(/^12\./);
    const { stdout } = await rootfs.runOk(['dpkg', '--print-architecture']);
    expect(stdout.trim()).toBe('arm64');
  });

  it('installs the Debian package: dpkg -i, whose postinst makes the vouch user', async () => {
    await rootfs.runOk(['dpkg', '-i', deb], { timeoutMs: 5 * 60_000 });
    const { stdout: status } = await rootfs.runOk(['dpkg-query', '--status', 'vouch']);
    expect(status).toContain('Status: install ok installed\n');
    expect(status).toContain(`Version: ${version}\n`);
    // Without systemd, adduser made it: a system account with the unit's home.
    const id = await rootfs.runOk(['getent', 'passwd', user]);
    expect(id.stdout).toMatch(/^vouch:x:\d+:\d+:[^:]*:\/var\/lib\/vouch:\/usr\/sbin\/nologin\n$/);
    // What systemd makes for the unit (StateDirectory=, RuntimeDirectory=): there is no
    // systemd in a chroot.
    await rootfs.runOk(['install', '-d', '-o', user, '-g', user, '-m', '0750', stateDir, runDir]);
    const { stdout } = await rootfs.runOk(['/usr/bin/vouch', '--version'], { user });
    expect(stdout).toBe(`${version}\n`);
  });

  it('imports a snapshot', async () => {
    const imported = await vouch(
      'snapshot',
      'import',
      `${testDir}/snapshot.tar`,
      '--root',
      `${testDir}/root.json`,
    );
    expect(imported.code, imported.stderr).toBe(0);
    const status = await vouch('status', '-o', 'json');
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ size: world.size, stale: false });
  });

  it('verifies files: signed TRUSTED (exit 0), revoked REVOKED (4), unsigned UNKNOWN (2)', async () => {
    const verify = async (path: string) => {
      const { code, stdout, stderr } = await vouch('verify', 'file', path, '-o', 'json');
      return { code, stderr, result: JSON.parse(stdout).results[0] };
    };
    expect(await verify(`${testDir}/os.raucb`)).toMatchObject({
      code: 0,
      result: { status: 'TRUSTED', digest: 'merkle-sha256-1mib', merkle: trustedMerkle },
    });
    expect(await verify(`${testDir}/old.raucb`)).toMatchObject({
      code: 4,
      result: { status: 'REVOKED' },
    });
    // A file of the system that no one signed.
    expect(await verify('/etc/debian_version')).toMatchObject({
      code: 2,
      result: { status: 'UNKNOWN' },
    });
  });

  it('runs the agent to ready: /v1/status on its socket, a sync from the mirror', async () => {
    if (!log) throw new Error('no log server');
    // The package's configuration, pointed at the test's root and mirror.
    const configPath = rootfs.path(systemConfigPath);
    const config = parseDocument(await readFile(configPath, 'utf8'));
    config.set('root', `${testDir}/root.json`);
    config.set('mirrors', [log.url]);
    await writeFile(configPath, config.toString());
    // The unit's command line (os-image/systemd/vouch.service), as its user.
    const agent = rootfs.start(['/usr/bin/vouch', 'agent', '--config', systemConfigPath], { user });
    const stderr = collect(agent);
    const exited = new Promise<number | null>((resolve) => agent.once('exit', resolve));
    const path = rootfs.path(socket);
    try {
      await waitFor(
        'the agent to log ready',
        async () => stderr().includes('"msg":"ready"'),
        120_000,
        () =>
          agent.exitCode === null
            ? undefined
            : new Error(`the agent exited: ${stderr().slice(-2000)}`),
      );
      const status = await agentRequest(path, 'GET', '/v1/status');
      expect(status.status).toBe(200);
      expect(status.body).toMatchObject({ size: world.size, version, stale: false });
      // The agent reaches the log server on this machine's loopback.
      const sync = await agentRequest(path, 'POST', '/v1/sync');
      expect(sync.status, JSON.stringify(sync.body)).toBe(200);
    } finally {
      // It exits 0 within 3 s of SIGTERM (docs/agent.md "Lifecycle"); qemu is given more.
      agent.kill('SIGTERM');
      const stopped = await Promise.race([exited, sleep(30_000).then(() => 'still running')]);
      expect(stopped, stderr().slice(-2000)).toBe(0);
    }
  });
});

/** The child's stderr so far. */
function collect(child: ChildProcess): () => string {
  let text = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    text += chunk.toString('utf8');
  });
  return () => text;
}
