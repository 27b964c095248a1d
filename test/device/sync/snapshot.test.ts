import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { serializeEnvelope } from '../../../agent/core/dsse';
import { loadState } from '../../../agent/device';
import { publicDir, publishRoot, serveLog } from '../../../agent/ledger';
import { runCli } from '../../helpers/cli';
import { cliBundle, grow, testWorld, type World } from '../../helpers/device';
import { signRoot } from '../../helpers/trust';

/**
 * Snapshots (export from a log dir or from a device, import), incremental syncs against
 * one import of everything, root updates, and importing with no network at all.
 */

let world: World;
let synced: string;
const tmp = (prefix: string) => mkdtemp(join(tmpdir(), prefix));

async function sync(stateDir: string, ...extra: string[]) {
  const result = await runCli([
    'sync',
    '--state-dir',
    stateDir,
    '--mirror',
    world.mirror,
    ...extra,
  ]);
  expect(result.exitCode, result.stderr).toBe(0);
}

/** A tar file of these members, in this order. */
async function tarOf(members: [string, Buffer][]): Promise<Buffer> {
  const tar = pack();
  for (const [name, data] of members) tar.entry({ name }, data);
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of tar as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

interface TarMember {
  readonly name: string;
  /** Where its data starts. */
  readonly start: number;
  readonly size: number;
}

/** The members of a ustar file as laid out: 512-byte headers (name, octal size), padded data. */
function tarMembers(bytes: Buffer): TarMember[] {
  const members: TarMember[] = [];
  for (let at = 0; at + 512 <= bytes.length && bytes[at] !== 0; ) {
    const field = (from: number, to: number) =>
      bytes
        .subarray(at + from, at + to)
        .toString('latin1')
        .replace(/\0.*$/s, '');
    const prefix = field(345, 500);
    const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
    const size = Number.parseInt(field(124, 136).trim(), 8);
    members.push({ name, start: at + 512, size });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return members;
}

/** The state's files that must be equal however the state was built. */
async function contents(dir: string) {
  const state = await loadState(dir);
  if (!state) throw new Error(`no state in ${dir}`);
  return {
    index: Buffer.from(state.index.bytes).toString('base64'),
    entries: (await readFile(join(dir, 'entries')))
      .subarray(0, state.entriesBytes)
      .toString('base64'),
    range: state.range.hashes.map((hash) => Buffer.from(hash).toString('hex')),
    size: state.checkpoint.checkpoint.size,
    rootVersion: state.root.version,
  };
}

beforeAll(async () => {
  world = await testWorld();
  synced = await tmp('vouch-incremental-');
  // Three syncs with appends between them, the first bootstrapping the root.
  await grow(world, 500);
  await sync(synced, '--root', world.rootPath);
  await grow(world, 700);
  await sync(synced);
  // A root update published beside the tiles: v2 adds nothing but must be picked up.
  const v2 = signRoot({ ...world.root, version: 2 }, [world.rootKey]);
  await publishRoot(world.logDir, new Uint8Array(Buffer.from(serializeEnvelope(v2))));
  await grow(world, 300);
  await sync(synced);
}, 120_000);

describe('incremental sync and snapshots', () => {
  it('gives the same state after three syncs as after one sync or one import of everything', async () => {
    const once = await tmp('vouch-once-');
    await sync(once, '--root', world.rootPath);
    const snapshot = join(await tmp('vouch-snap-'), 'log.tar');
    const exported = await runCli([
      'snapshot',
      'export',
      '--log',
      world.logDir,
      '--out',
      snapshot,
      '-o',
      'json',
    ]);
    expect(exported.exitCode, exported.stderr).toBe(0);
    expect(JSON.parse(exported.stdout)).toMatchObject({ size: 1500, roots: 1 });
    const imported = await tmp('vouch-import-');
    const result = await runCli([
      'snapshot',
      'import',
      snapshot,
      '--root',
      world.rootPath,
      '--state-dir',
      imported,
    ]);
    expect(result.exitCode, result.stderr).toBe(0);

    const expected = await contents(synced);
    expect(expected).toMatchObject({ size: 1500, rootVersion: 2 });
    expect(await contents(once)).toEqual(expected);
    expect(await contents(imported)).toEqual(expected);
  });

  it('exports from a device and imports on another device, then refuses older snapshots', async () => {
    const snapshot = join(await tmp('vouch-snap-'), 'device.tar');
    const exported = await runCli([
      'snapshot',
      'export',
      '--state-dir',
      synced,
      '--out',
      snapshot,
      '-o',
      'json',
    ]);
    expect(exported.exitCode, exported.stderr).toBe(0);
    expect(JSON.parse(exported.stdout)).toMatchObject({ size: 1500, roots: 2 });
    const other = await tmp('vouch-other-');
    const imported = await runCli([
      'snapshot',
      'import',
      snapshot,
      '--root',
      world.rootPath,
      '--state-dir',
      other,
    ]);
    expect(imported.exitCode, imported.stderr).toBe(0);
    expect(await contents(other)).toEqual(await contents(synced));
    // Importing it again changes nothing.
    const again = await runCli(['snapshot', 'import', snapshot, '--state-dir', other]);
    expect(again.stdout).toMatch(/up to date/);

    // A snapshot of a smaller tree is a rollback.
    const small = await tmp('vouch-small-');
    const smallWorld = await testWorld();
    await grow(smallWorld, 10);
    const older = join(small, 'older.tar');
    await runCli(['snapshot', 'export', '--log', smallWorld.logDir, '--out', older]);
    const state = await tmp('vouch-rollback-');
    await runCli([
      'sync',
      '--state-dir',
      state,
      '--root',
      smallWorld.rootPath,
      '--mirror',
      smallWorld.mirror,
    ]);
    await grow(smallWorld, 5);
    await runCli(['sync', '--state-dir', state, '--mirror', smallWorld.mirror]);
    const rollback = await runCli(['snapshot', 'import', older, '--state-dir', state]);
    expect(rollback.exitCode).toBe(65);
    expect(rollback.stderr).toMatch(/tree of 10 entries; this device has verified 15/);
  });

  it('refuses damaged, reordered and oversized snapshots, leaving the state alone', async () => {
    const snapshot = join(await tmp('vouch-snap-'), 'log.tar');
    await runCli(['snapshot', 'export', '--log', world.logDir, '--out', snapshot]);
    const bytes = await readFile(snapshot);
    const tampered = Buffer.from(bytes);
    // A byte of the first statement, in the first entry bundle.
    const at = tampered.indexOf(Buffer.from('application/vnd.in-toto+json')) + 5;
    tampered[at] = (tampered[at] as number) ^ 1;
    const dir = await tmp('vouch-bad-');
    const cases: [string, Buffer, number, RegExp][] = [
      ['tampered.tar', tampered, 65, /do not give the checkpoint's root/],
      [
        'reordered.tar',
        await tarOf([
          ['checkpoint', await readFile(join(publicDir(world.logDir), 'checkpoint'))],
          ['vouch-snapshot.json', Buffer.from('{}')],
        ]),
        65,
        /expected vouch-snapshot.json, found checkpoint/,
      ],
      [
        'large-manifest.tar',
        await tarOf([['vouch-snapshot.json', Buffer.from('{}'.padEnd(4097, ' '))]]),
        65,
        /vouch-snapshot\.json .*4096 bytes/,
      ],
      [
        'garbage.tar',
        Buffer.alloc(4096, 7),
        65,
        /garbage\.tar is not a vouch snapshot: not a tar file$/m,
      ],
      // A text file is no snapshot, not a truncated one (it said "ends early" before).
      [
        'passwd',
        Buffer.from('root:x:0:0:root:/root:/bin/bash\n'.repeat(40)),
        65,
        /passwd is not a vouch snapshot: not a tar file$/m,
      ],
      [
        'short.tar',
        bytes.subarray(0, 100),
        65,
        /short\.tar is not a vouch snapshot: 100 bytes, too short for a tar file/,
      ],
      [
        'truncated.tar',
        bytes.subarray(0, Math.floor(bytes.length / 2)),
        65,
        /ends early: .*; the file is truncated or was not fully copied$/m,
      ],
    ];
    for (const [name, content, exitCode, message] of cases) {
      const path = join(dir, name);
      await writeFile(path, content);
      const state = await tmp('vouch-state-');
      const result = await runCli([
        'snapshot',
        'import',
        path,
        '--root',
        world.rootPath,
        '--state-dir',
        state,
      ]);
      expect(result.exitCode, name).toBe(exitCode);
      expect(result.stderr, name).toMatch(message);
      expect(await loadState(state), name).toBeUndefined();
    }
    const config = join(dir, 'small.yaml');
    await writeFile(config, 'snapshot:\n  maxBytes: 4096\n');
    const state = await tmp('vouch-state-');
    const capped = await runCli([
      'snapshot',
      'import',
      snapshot,
      '--root',
      world.rootPath,
      '--state-dir',
      state,
      '--config',
      config,
    ]);
    expect(capped.exitCode).toBe(65);
    expect(capped.stderr).toMatch(/over 4096 bytes/);
  });

  it('says where a truncated snapshot ends, not what the tar reader tripped over', async () => {
    const snapshot = join(await tmp('vouch-snap-'), 'log.tar');
    await runCli(['snapshot', 'export', '--log', world.logDir, '--out', snapshot]);
    const bytes = await readFile(snapshot);
    const members = tarMembers(bytes);
    const [manifest, checkpoint, , firstBundle, secondBundle] = members;
    const last = members.at(-1);
    if (!manifest || !checkpoint || !firstBundle || !secondBundle || !last) {
      throw new Error('unexpected snapshot layout');
    }
    const end = (member: TarMember) => member.start + Math.ceil(member.size / 512) * 512;
    const cuts: [number, string][] = [
      // In a member's data: "Stream was destroyed" before.
      [
        secondBundle.start + 100,
        `after member ${firstBundle.name}, 100 bytes into ${secondBundle.name} (of ${secondBundle.size})`,
      ],
      [
        checkpoint.start + 10,
        `after member ${manifest.name}, 10 bytes into checkpoint (of ${checkpoint.size})`,
      ],
      // In a header, in the blocks that end the tar: "Unexpected end of data" before.
      [
        end(firstBundle) + 200,
        `after member ${firstBundle.name}, at byte ${end(firstBundle) + 200}`,
      ],
      [end(last) + 700, `after member ${last.name}, at byte ${end(last) + 700}`],
      // At a member's end: "expected …, found the end" before.
      [
        end(firstBundle),
        `after member ${firstBundle.name}, where ${secondBundle.name} was expected`,
      ],
    ];
    const dir = await tmp('vouch-truncated-');
    for (const [length, where] of cuts) {
      const path = join(dir, `cut-${length}.tar`);
      await writeFile(path, bytes.subarray(0, length));
      const state = await tmp('vouch-state-');
      const result = await runCli([
        'snapshot',
        'import',
        path,
        '--root',
        world.rootPath,
        '--state-dir',
        state,
      ]);
      expect(result.exitCode, where).toBe(65);
      expect(result.stderr).toBe(
        `vouch: snapshot ${path} ends early: ${where}; the file is truncated or was not fully copied\n`,
      );
      expect(await loadState(state)).toBeUndefined();
    }
  });

  it('export to a directory that does not exist says so (74), and writes nothing', async () => {
    const parent = await tmp('vouch-out-');
    const out = join(parent, 'missing', 'dir', 'x.tar');
    for (const source of [
      ['--state-dir', synced],
      ['--log', world.logDir],
    ]) {
      const result = await runCli(['snapshot', 'export', ...source, '--out', out]);
      expect(result.exitCode).toBe(74);
      expect(result.stderr).toBe(
        `vouch: cannot write ${out}: no directory ${join(parent, 'missing', 'dir')} (ENOENT)\n`,
      );
    }
    expect(await readdir(parent)).toEqual([]);
  });

  it('imports and answers status with no network: no socket is opened', async () => {
    const snapshot = join(await tmp('vouch-snap-'), 'offline.tar');
    await runCli(['snapshot', 'export', '--state-dir', synced, '--out', snapshot]);
    const connect = vi.spyOn(Socket.prototype, 'connect');
    try {
      const state = await tmp('vouch-offline-');
      const imported = await runCli([
        'snapshot',
        'import',
        snapshot,
        '--root',
        world.rootPath,
        '--state-dir',
        state,
      ]);
      expect(imported.exitCode, imported.stderr).toBe(0);
      const status = await runCli(['status', '--state-dir', state, '-o', 'json']);
      expect(JSON.parse(status.stdout)).toMatchObject({ size: 1500 });
      expect(connect).not.toHaveBeenCalled();
    } finally {
      connect.mockRestore();
    }
  });

  it('imports and answers status in a network namespace with no network (unshare -n, as root)', async () => {
    // Root and unshare are how this project's machines and CI run; say so if not.
    expect(process.getuid?.(), 'this test needs root for unshare -n').toBe(0);
    const snapshot = join(await tmp('vouch-snap-'), 'offline.tar');
    await runCli(['snapshot', 'export', '--state-dir', synced, '--out', snapshot]);
    const state = await tmp('vouch-netns-');
    const run = (...args: string[]) =>
      spawnSync('unshare', ['-n', process.execPath, cliBundle, '--state-dir', state, ...args], {
        encoding: 'utf8',
      });
    // The namespace really has no network: the mirror this process serves on 127.0.0.1
    // is out of reach from inside it.
    const server = await serveLog(world.logDir, { port: 0 });
    try {
      const online = run('sync', '--root', world.rootPath, '--mirror', server.url);
      expect(online.status).toBe(69);
      expect(online.stderr).toMatch(/ENETUNREACH/);
    } finally {
      await server.close();
    }
    const imported = run('snapshot', 'import', snapshot, '--root', world.rootPath);
    expect(imported.status, imported.stderr).toBe(0);
    const status = run('status', '-o', 'json');
    expect(status.status, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ size: 1500, rootVersion: 2, stale: false });
  });
});
