import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { extract } from 'tar-stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { serializeEnvelope } from '../../agent/core/dsse';
import { publishRoot } from '../../agent/ledger';
import { runCli } from '../helpers/cli';
import { grow, syncedDevice, testWorld, type World } from '../helpers/device';
import { signRoot } from '../helpers/trust';

/**
 * `vouch snapshot export --log`: what it writes from a log's published files, byte for byte
 * as before it moved to agent/ledger (test/fixtures/snapshot/make.ts), its errors and exit
 * codes as before, and the same members as a snapshot exported from a device synced to that log.
 */

const fixtures = fileURLToPath(new URL('../fixtures/snapshot/', import.meta.url));
const tmp = (prefix: string) => mkdtemp(join(tmpdir(), prefix));

async function exportLog(logDir: string): Promise<Buffer> {
  const out = join(await tmp('vouch-snap-'), 'log.tar');
  const result = await runCli(['snapshot', 'export', '--log', logDir, '--out', out]);
  expect(result.exitCode, result.stderr).toBe(0);
  return readFile(out);
}

/** A tar file's members in order, name and data. */
async function members(tar: Buffer): Promise<[string, Buffer][]> {
  const reader = extract();
  reader.end(tar);
  const found: [string, Buffer][] = [];
  for await (const entry of reader) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry as AsyncIterable<Buffer>) chunks.push(chunk);
    found.push([entry.header.name, Buffer.concat(chunks)]);
  }
  return found;
}

describe('snapshot export --log', () => {
  it('writes the fixture log as before, byte for byte: from the log directory and from its public/', async () => {
    const expected = await readFile(join(fixtures, 'log.tar'));
    const logDir = join(fixtures, 'log');
    expect((await exportLog(logDir)).equals(expected)).toBe(true);
    expect((await exportLog(join(logDir, 'public'))).equals(expected)).toBe(true);
  });

  it('says what is wrong with a log it cannot export, as before', async () => {
    const cases: [
      string,
      (logDir: string) => Promise<unknown>,
      number,
      (logDir: string) => string,
    ][] = [
      [
        'no checkpoint',
        (logDir) => rm(join(logDir, 'public', 'checkpoint')),
        65,
        (logDir) => `${join(logDir, 'public')} has no checkpoint`,
      ],
      [
        'a bundle missing',
        (logDir) => rm(join(logDir, 'public', 'tile/entries/001.p/44')),
        65,
        (logDir) => `${join(logDir, 'public')}: tile/entries/001.p/44 is missing`,
      ],
      [
        'a checkpoint over its cap',
        (logDir) => writeFile(join(logDir, 'public', 'checkpoint'), Buffer.alloc(256 * 1024 + 1)),
        65,
        (logDir) =>
          `mirror ${pathToFileURL(join(logDir, 'public')).href}: checkpoint is over 262144 bytes`,
      ],
      [
        'a root file that is a directory',
        (logDir) => mkdir(join(logDir, 'public', 'roots', '3.json')),
        69,
        (logDir) => `mirror ${pathToFileURL(join(logDir, 'public')).href}: `,
      ],
    ];
    for (const [what, damage, exitCode, message] of cases) {
      const logDir = join(await tmp('vouch-log-'), 'log');
      await cp(join(fixtures, 'log'), logDir, { recursive: true });
      await damage(logDir);
      const out = join(await tmp('vouch-snap-'), 'log.tar');
      const result = await runCli(['snapshot', 'export', '--log', logDir, '--out', out]);
      expect(result.exitCode, what).toBe(exitCode);
      expect(result.stderr, what).toContain(`vouch: ${message(logDir)}`);
      await expect(readFile(out), what).rejects.toThrow(/ENOENT/);
    }
  });

  describe('from a log and from a device synced to it', () => {
    let world: World;
    let device: string;
    beforeAll(async () => {
      world = await testWorld();
      await grow(world, 300);
      const v2 = signRoot({ ...world.root, version: 2 }, [world.rootKey]);
      await publishRoot(world.logDir, new Uint8Array(Buffer.from(serializeEnvelope(v2))));
      device = await syncedDevice(world);
    }, 120_000);

    it('holds the same manifest, checkpoint and entry bundles, and the roots both have', async () => {
      const fromLog = await members(await exportLog(world.logDir));
      const out = join(await tmp('vouch-snap-'), 'device.tar');
      const exported = await runCli(['snapshot', 'export', '--state-dir', device, '--out', out]);
      expect(exported.exitCode, exported.stderr).toBe(0);
      const fromDevice = await members(await readFile(out));
      const names = (found: [string, Buffer][]) => found.map(([name]) => name);
      expect(names(fromLog)).toEqual([
        'vouch-snapshot.json',
        'checkpoint',
        'roots/2.json',
        'tile/entries/000',
        'tile/entries/001.p/44',
      ]);
      // The device also holds the root it started from, which the log never published.
      expect(names(fromDevice)).toEqual([
        'vouch-snapshot.json',
        'checkpoint',
        'roots/1.json',
        ...names(fromLog).slice(2),
      ]);
      expect(fromDevice.filter(([name]) => name !== 'roots/1.json')).toEqual(fromLog);
    });
  });
});
