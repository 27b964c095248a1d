import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, expect, it } from 'vitest';
import { requireBinary } from '../../scripts/lib/services';
import { cliBundle, grow, signerId, syncedDevice, testWorld } from '../helpers/device';
import { describeWith } from '../helpers/services';
import { signedStatement } from '../helpers/trust';

/**
 * The RAUC pre-install handler, os-image/rauc/vouch-pre-install, in Debian's real RAUC:
 * bundles made and signed with `rauc bundle` (a test certificate from openssl), installed
 * with `rauc install` through a `rauc service` on a D-Bus session bus into file-backed slots
 * (bootloader=noop, the booted slot given by --override-boot-slot), the handler in the
 * system.conf's [handlers] pre-install. Each bundle's verdict comes from a real trust state
 * (a log published and synced: test/helpers/device.ts) through the vouch CLI on PATH.
 *
 * Plain bundles: a verity bundle needs the kernel's device-mapper, which this machine's
 * kernel lacks (`Failed to open /dev/mapper/control: No such device`); the handler finds a
 * verity bundle's file through the dm device's loop slave instead.
 */

const exec = promisify(execFile);
const hook = resolve('os-image/rauc/vouch-pre-install');
const MiB = 2 ** 20;

let dir: string;
/** A device state in which trusted.raucb is TRUSTED and untrusted.raucb UNTRUSTED. */
let synced: string;
/** The same verdicts, from a log whose last checkpoint is 30 days old. */
let stale: string;
type Name = 'trusted' | 'untrusted' | 'unsigned';
/** The bundles, and the image each carries. */
const bundles = {} as Record<Name, { path: string; image: Buffer }>;

/** A bundle whose one rootfs image holds `name` then zeros, signed with the test key. */
async function makeBundle(name: Name): Promise<void> {
  const content = join(dir, `${name}-content`);
  await mkdir(content);
  const image = Buffer.alloc(MiB);
  image.write(name);
  await writeFile(join(content, 'rootfs.img'), image);
  await writeFile(
    join(content, 'manifest.raucm'),
    '[update]\ncompatible=vouch-test\nversion=1.0\n\n[bundle]\nformat=plain\n\n' +
      '[image.rootfs]\nfilename=rootfs.img\n',
  );
  const path = join(dir, `${name}.raucb`);
  const key = ['--cert', join(dir, 'cert.pem'), '--key', join(dir, 'key.pem')];
  await exec('rauc', ['bundle', ...key, content, path]);
  bundles[name] = { path, image };
}

async function sha256Of(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** A statement about bundle `name`'s file by the world's signer. */
async function statementAbout(
  world: Awaited<ReturnType<typeof testWorld>>,
  name: Name,
  status: 'trusted' | 'untrusted',
) {
  const subject = {
    name: `ghcr.io/example/${name}.raucb`,
    sha256: await sha256Of(bundles[name].path),
  };
  return signedStatement(world.signer, { signer: signerId, subjects: [subject], status });
}

/**
 * `rauc install` of bundle `name` into empty slots, with the handler's vouch configuration
 * naming `stateDir` and its defaults file holding `defaults`. What rauc printed, and slot
 * B (the one not booted) afterwards.
 */
async function install(name: Name, stateDir: string, defaults = '') {
  await writeFile(join(dir, 'agent.yaml'), `stateDir: ${stateDir}\n`);
  await writeFile(join(dir, 'vouch-rauc'), defaults);
  for (const slot of ['slot0.img', 'slot1.img']) {
    await writeFile(join(dir, slot), '');
    await truncate(join(dir, slot), 2 * MiB);
  }
  const env = {
    ...process.env,
    PATH: `${dir}/bin:${process.env.PATH}`,
    VOUCH_CONFIG: join(dir, 'agent.yaml'),
    VOUCH_RAUC_DEFAULTS: join(dir, 'vouch-rauc'),
  };
  const argv = ['--', 'sh', join(dir, 'install.sh'), join(dir, 'system.conf'), bundles[name].path];
  const result = await exec('dbus-run-session', argv, { env }).catch((error) => error);
  const slot = await readFile(join(dir, 'slot1.img'));
  return {
    code: (result.code as number | undefined) ?? 0,
    output: `${result.stdout}${result.stderr}`,
    written: slot.subarray(0, MiB).equals(bundles[name].image),
  };
}

describeWith('rauc', 'the RAUC pre-install handler in rauc install', () => {
  beforeAll(async () => {
    requireBinary('rauc');
    dir = await mkdtemp(join(tmpdir(), 'vouch-rauc-'));
    const req = 'req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=vouch-test'.split(' ');
    await exec('openssl', [...req, '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
    for (const name of ['trusted', 'untrusted', 'unsigned'] as const) await makeBundle(name);

    const world = await testWorld();
    await grow(world, 0, [
      await statementAbout(world, 'trusted', 'trusted'),
      await statementAbout(world, 'untrusted', 'untrusted'),
    ]);
    synced = await syncedDevice(world);

    const month = 30 * 24 * 3600 * 1000;
    const old = await testWorld({ createdAt: new Date(Date.now() - month) });
    const statements = [await statementAbout(old, 'trusted', 'trusted')];
    await grow(old, 0, statements, new Date(Date.now() - month));
    stale = await syncedDevice(old);

    // The vouch CLI the handler runs, as `vouch` on PATH.
    await mkdir(join(dir, 'bin'));
    await writeFile(join(dir, 'bin/vouch'), `#!/bin/sh\nexec node ${cliBundle} "$@"\n`);
    await chmod(join(dir, 'bin/vouch'), 0o755);
    await writeFile(
      join(dir, 'system.conf'),
      `[system]
compatible=vouch-test
bootloader=noop
mountprefix=${dir}/mnt
data-directory=${dir}/data

[keyring]
path=${dir}/cert.pem

[handlers]
pre-install=${hook}

[slot.rootfs.0]
device=${dir}/slot0.img
type=raw
bootname=A

[slot.rootfs.1]
device=${dir}/slot1.img
type=raw
bootname=B
`,
    );
    // rauc service for the one install on the session bus dbus-run-session starts (it clears
    // DBUS_STARTER_BUS_TYPE, which makes RAUC use that bus: src/main.c), ready once
    // `rauc status` answers through it.
    await writeFile(
      join(dir, 'install.sh'),
      `export DBUS_STARTER_BUS_TYPE=session
rauc --conf="$1" --override-boot-slot=A service &
service=$!
until rauc status >/dev/null 2>&1; do
  kill -0 $service || exit 99
  sleep 0.1
done
rauc install "$2"
code=$?
kill $service
wait $service
exit $code
`,
    );
  }, 120_000);

  it('installs a TRUSTED bundle', async () => {
    const { code, output, written } = await install('trusted', synced);
    expect(code, output).toBe(0);
    expect(output).toContain(`vouch: ${bundles.trusted.path} is TRUSTED`);
    expect(written).toBe(true);
  });

  it('refuses an UNTRUSTED bundle before writing a slot', async () => {
    const { code, output, written } = await install('untrusted', synced);
    expect(code, output).not.toBe(0);
    expect(output).toContain(`vouch refused the bundle: ${bundles.untrusted.path} is UNTRUSTED`);
    expect(written).toBe(false);
  });

  it('refuses a bundle nobody signed: UNKNOWN', async () => {
    const { code, output, written } = await install('unsigned', synced);
    expect(code, output).not.toBe(0);
    expect(output).toContain(`vouch refused the bundle: ${bundles.unsigned.path} is UNKNOWN`);
    expect(written).toBe(false);
  });

  it('refuses what it could not check: no trust state', async () => {
    const { code, output, written } = await install('trusted', join(dir, 'no-state'));
    expect(code, output).not.toBe(0);
    expect(output).toContain(
      'vouch refused the bundle: could not check it: vouch exited 69: no trust state in',
    );
    expect(written).toBe(false);
  });

  it('refuses a TRUSTED verdict from a stale trust state', async () => {
    const { code, output, written } = await install('trusted', stale);
    expect(code, output).not.toBe(0);
    expect(output).toContain('could not check it: the trust state is stale');
    expect(written).toBe(false);
  });

  it('installs what it could not check when the defaults file allows it', async () => {
    const allow = 'VOUCH_RAUC_COULD_NOT_CHECK=allow\n';
    const { code, output, written } = await install('trusted', join(dir, 'no-state'), allow);
    expect(code, output).toBe(0);
    expect(output).toContain('vouch could not check the bundle, installing as configured');
    expect(written).toBe(true);
  });

  it('still refuses an UNTRUSTED bundle when could-not-check is allowed', async () => {
    const allow = 'VOUCH_RAUC_COULD_NOT_CHECK=allow\n';
    const { code, output, written } = await install('untrusted', synced, allow);
    expect(code, output).not.toBe(0);
    expect(output).toContain('is UNTRUSTED');
    expect(written).toBe(false);
  });
});
