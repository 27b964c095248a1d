import { execFile } from 'node:child_process';
import { mkdtemp, open, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileDigests } from '../../../agent/content/digests';
import { version } from '../../../package.json';
import { embeddedBroker, type MqttBroker } from '../../../scripts/lib/mqtt-broker';
import { requireBinary, waitFor } from '../../../scripts/lib/services';
import {
  type Arch,
  arches,
  type Command,
  commandFor,
  targetArch,
} from '../../../scripts/sea/targets';
import { startAgent, stopAgent } from '../../device/agent/harness';
import { runCli } from '../../helpers/cli';
import { grow, signerId, syncedDevice, testWorld, type World } from '../../helpers/device';
import { testExecutable } from '../../helpers/executables';
import { describeWith } from '../../helpers/services';
import { signedStatement } from '../../helpers/trust';

/** A suite for `arch`'s executable: under qemu, it needs qemu (and fails without it). */
function describeOn(arch: Arch, emulated: boolean, body: () => void): void {
  if (emulated) describeWith('qemu', `vouch-linux-${arch} under qemu`, body);
  else describe(`vouch-linux-${arch}`, body);
}

/**
 * The single executables (scripts/sea/) where they are meant to run: arm64 and armv7 under
 * qemu-user, x64 natively (on an x64 machine). Each prints its version (a plain node would
 * print Node's), profiles the hardware, imports a snapshot of more entries than the sync
 * checks inline (its verify worker threads run), verifies a 64 MiB file on the hash pool's
 * worker threads, and runs the agent to ready, which reaches Docker and an MQTT broker
 * through the libraries the executable carries (dockerode, MQTT.js).
 */

const exec = promisify(execFile);
const MiB = 2 ** 20;

/** What an ELF header says of each target: its class (1: 32-bit, 2: 64-bit) and e_machine. */
const elf: Record<Arch, { readonly elfClass: number; readonly machine: number }> = {
  arm64: { elfClass: 2, machine: 183 }, // EM_AARCH64
  armv7: { elfClass: 1, machine: 40 }, // EM_ARM
  x64: { elfClass: 2, machine: 62 }, // EM_X86_64
};

let world: World;
/** A device state synced from the world (in this process). */
let synced: string;
let snapshot: string;
/** 64 MiB, signed by its SHA-256 and its chunked digest `merkle`. */
let signedFile: string;
let merkle: string;
let broker: MqttBroker;

beforeAll(async () => {
  world = await testWorld();
  // More than the sync checks on its own thread (device/sync/checker.ts): an import of them
  // starts the verify workers.
  await grow(world, 1100);
  const dir = await mkdtemp(join(tmpdir(), 'vouch-sea-'));
  signedFile = join(dir, 'os.raucb');
  await writeFile(signedFile, 'an OS bundle');
  await truncate(signedFile, 64 * MiB);
  const [digests] = await fileDigests([signedFile]);
  if (!digests) throw new Error('no digests');
  merkle = digests.merkle;
  const subject = { name: 'ghcr.io/example/os.raucb', sha256: digests.sha256, merkle };
  await grow(world, 0, [signedStatement(world.signer, { signer: signerId, subjects: [subject] })]);
  synced = await syncedDevice(world);
  snapshot = join(dir, 'snapshot.tar');
  const exported = await runCli(['snapshot', 'export', '--state-dir', synced, '--out', snapshot]);
  expect(exported.exitCode, exported.stderr).toBe(0);
  broker = await embeddedBroker();
});

afterAll(async () => {
  await broker?.close();
});

for (const arch of arches) {
  const emulated = targetArch(arch) !== process.arch;
  describeOn(arch, emulated, () => {
    let program: string;
    let vouch: Command;
    const run = async (...args: string[]) => {
      const result = await exec(vouch.file, [...vouch.args, ...args], {
        env: { ...process.env, ...vouch.env },
      }).catch((error) => error);
      return { code: result.code ?? 0, stdout: String(result.stdout), stderr: result.stderr };
    };

    beforeAll(async () => {
      if (emulated) requireBinary('qemu');
      program = await testExecutable(arch);
      vouch = commandFor(arch, program);
    }, 300_000);

    it('is an ELF program for its machine', async () => {
      const file = await open(program);
      const { buffer } = await file.read(Buffer.alloc(20), 0, 20, 0);
      await file.close();
      expect(buffer.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
      expect({ elfClass: buffer[4], machine: buffer.readUInt16LE(18) }).toEqual(elf[arch]);
    });

    it('prints its version', async () => {
      expect(await run('--version')).toMatchObject({ code: 0, stdout: `${version}\n` });
    });

    it('profiles the hardware: hw -o json', async () => {
      const { code, stdout, stderr } = await run('hw', '-o', 'json');
      expect(code, stderr).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({
        cores: expect.any(Number),
        plan: { workers: expect.any(Number) },
      });
    });

    it('imports a snapshot, its entries checked on worker threads', async () => {
      const state = await mkdtemp(join(tmpdir(), 'vouch-sea-state-'));
      const imported = await run(
        'snapshot',
        'import',
        snapshot,
        '--root',
        world.rootPath,
        '--state-dir',
        state,
      );
      expect(imported.code, imported.stderr).toBe(0);
      const status = await run('status', '--state-dir', state, '-o', 'json');
      expect(status.code, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout)).toMatchObject({ size: world.size });
    });

    it('verifies a 64 MiB file on the hash pool: TRUSTED, by its chunked digest', async () => {
      const { code, stdout, stderr } = await run(
        'verify',
        'file',
        signedFile,
        '--state-dir',
        synced,
        '-o',
        'json',
      );
      expect(code, stderr).toBe(0);
      expect(JSON.parse(stdout).results[0]).toMatchObject({
        status: 'TRUSTED',
        digest: 'merkle-sha256-1mib',
        merkle,
        size: 64 * MiB,
      });
    });

    it('runs the agent to ready, which answers /v1/status and reaches Docker and MQTT', async () => {
      const stateDir = await syncedDevice(world);
      const config = { stateDir, sync: { schedule: '0 0 1 1 *' }, mqtt: { url: broker.url } };
      const agent = await startAgent(config, {}, undefined, vouch);
      try {
        const status = await agent.request('GET', '/v1/status');
        expect(status.status).toBe(200);
        // dockerode ran: it found no daemon at the harness's DOCKER_HOST.
        expect(status.body).toMatchObject({
          size: world.size,
          services: { docker: { reason: expect.stringContaining('/nonexistent/docker.sock') } },
        });
        // MQTT.js ran: connected to the broker.
        await waitFor(
          'the agent to connect to the MQTT broker',
          async () => {
            const { body } = await agent.request('GET', '/v1/status');
            return (
              (body as { services: { mqtt?: { state: string } } }).services.mqtt?.state === 'ok'
            );
          },
          30_000,
        );
      } finally {
        expect((await stopAgent(agent)).code).toBe(0);
      }
    });
  });
}
