import { execFileSync } from 'node:child_process';
import {
  appendFile,
  chmod,
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { serializeEnvelope } from '../../../agent/core/dsse';
import { loadState, verdictFor } from '../../../agent/device';
import { openState } from '../../../agent/device/store/state';
import { addForkEvidence } from '../../../agent/device/store/status';
import { initLog, publicDir, publishRoot } from '../../../agent/ledger';
import { runCli } from '../../helpers/cli';
import {
  digestOf,
  grow,
  statement,
  stateOf,
  syncedDevice,
  testWorld,
  type World,
} from '../../helpers/device';
import { rejectsWith } from '../../helpers/errors';
import { testOrigin } from '../../helpers/log';
import { signRoot } from '../../helpers/trust';

/**
 * Issue #13 item 10: each state file damaged in turn (truncated, one byte flipped, deleted).
 * Loading names the damaged file and the command to run; `vouch sync` repairs what it can
 * from a mirror; a rollback (a mirror serving an older checkpoint) is refused before the
 * repair and after it.
 *
 * The device synced three times: to 100 entries (root v1), to 300 (root v2 published
 * meanwhile), to 600. So checkpoint.json holds 600, checkpoint.previous.json 300, and the
 * chain is roots/1.json, roots/2.json.
 */

let world: World;
let base: string;
/** Copies of the log as published at 100 and 300 entries: rollback mirrors. */
let at100: string;
let at300: string;

type Damage = 'truncated' | 'flipped' | 'deleted';
const damages: readonly Damage[] = ['truncated', 'flipped', 'deleted'];

async function damage(path: string, how: Damage): Promise<void> {
  if (how === 'deleted') return rm(path);
  const bytes = await readFile(path);
  if (how === 'truncated') return writeFile(path, bytes.subarray(0, bytes.length >> 1));
  const at = bytes.length >> 1;
  bytes[at] = (bytes[at] as number) ^ 0x01;
  return writeFile(path, bytes);
}

async function copyOfBase(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vouch-damage-'));
  await cp(base, dir, { recursive: true });
  return dir;
}

async function published(): Promise<string> {
  const copy = await mkdtemp(join(tmpdir(), 'vouch-published-'));
  await cp(publicDir(world.logDir), copy, { recursive: true });
  return pathToFileURL(copy).href;
}

const loadError = (dir: string) => rejectsWith(loadState(dir), 'STATE_INVALID');

/** `vouch state reset` of `dir` to the world's first root, from its mirror. */
const resetState = (dir: string) =>
  runCli([
    'state',
    'reset',
    '--state-dir',
    dir,
    '--root',
    world.rootPath,
    '--mirror',
    world.mirror,
  ]);
const sync = (dir: string, ...mirrors: string[]) =>
  runCli(['sync', '--state-dir', dir, ...mirrors.flatMap((m) => ['--mirror', m]), '-o', 'json']);

/** After a repair: the whole state verifies, nothing left to rewrite, rollbacks refused. */
async function expectRepaired(dir: string): Promise<void> {
  const state = await stateOf(dir);
  expect(state.checkpoint.checkpoint.size).toBe(600);
  expect(state.index.rows).toBe(600);
  const opened = await openState(dir);
  expect(opened?.damage).toEqual([]);
  expect(opened?.rewrite).toBe(false);
  const rollback = await sync(dir, at300);
  expect(rollback.exitCode, rollback.stdout).toBe(65);
  expect(JSON.parse(rollback.stdout).error.code).toBe('LOG_ROLLBACK');
}

beforeAll(async () => {
  world = await testWorld({ witness: true });
  const v1 = serializeEnvelope(signRoot(world.root, [world.rootKey]));
  await publishRoot(world.logDir, new Uint8Array(Buffer.from(v1)));
  await grow(world, 100);
  at100 = await published();
  base = await mkdtemp(join(tmpdir(), 'vouch-damage-base-'));
  const first = await runCli([
    'sync',
    '--state-dir',
    base,
    '--root',
    world.rootPath,
    '--mirror',
    world.mirror,
  ]);
  expect(first.exitCode, first.stderr).toBe(0);
  const v2 = serializeEnvelope(signRoot({ ...world.root, version: 2 }, [world.rootKey]));
  await publishRoot(world.logDir, new Uint8Array(Buffer.from(v2)));
  await grow(world, 200);
  at300 = await published();
  for (const size of [300, 600]) {
    if (size === 600) await grow(world, 300);
    const next = await sync(base, world.mirror);
    expect(next.exitCode, next.stdout).toBe(0);
  }
  expect((await stateOf(base)).chain.map((root) => root.version)).toEqual([1, 2]);
}, 120_000);

describe('a damaged trust file', () => {
  const trustFiles = ['checkpoint.json', 'roots/1.json', 'roots/2.json', 'index-600.bin'];
  for (const file of trustFiles) {
    for (const how of damages) {
      it(`${file} ${how}: named at load with vouch sync, repaired by it, rollback still refused`, async () => {
        const dir = await copyOfBase();
        await damage(join(dir, file), how);
        const error = await loadError(dir);
        expect(error.message).toContain(`${file}: `);
        expect(error.message).toMatch(/run vouch sync /);

        // Before a repair, on a copy: even the previous checkpoint (300) is newer than 100.
        // roots/2.json cannot come back from the mirror of 100 entries, which predates it.
        const copy = await mkdtemp(join(tmpdir(), 'vouch-damage-'));
        await cp(dir, copy, { recursive: true });
        const rollback = JSON.parse((await sync(copy, at100)).stdout);
        if (file === 'roots/2.json') {
          expect(rollback.error).toMatchObject({ code: 'UNAVAILABLE' });
          expect(rollback.error.message).toMatch(/has no roots\/2\.json/);
          expect((await loadError(copy)).message).toContain(`${file}: `);
        } else {
          expect(rollback.error.code).toBe('LOG_ROLLBACK');
        }

        const repaired = await sync(dir, world.mirror);
        expect(repaired.exitCode, repaired.stdout).toBe(0);
        expect(JSON.parse(repaired.stdout)).toMatchObject({ size: 600, repaired: [file] });
        await expectRepaired(dir);
      });
    }
  }

  for (const how of damages) {
    it(`entries ${how}: seen by the sync (and by an export), repaired by a full download`, async () => {
      const dir = await copyOfBase();
      await damage(join(dir, 'entries'), how);
      if (how === 'flipped') {
        // Answering does not read the entries: loading checks only their length...
        await stateOf(dir);
        // ...and an export, which does, refuses them.
        const out = join(dir, 'snapshot.tar');
        const exported = await runCli(['snapshot', 'export', '--state-dir', dir, '--out', out]);
        expect(exported.exitCode).toBe(65);
        expect(exported.stderr).toMatch(
          /entries: does not give the verified root; run vouch sync /,
        );
      } else {
        expect((await loadError(dir)).message).toMatch(/entries: holds \d+ bytes.*run vouch sync /);
      }
      const repaired = await sync(dir, world.mirror);
      expect(repaired.exitCode, repaired.stdout).toBe(0);
      expect(JSON.parse(repaired.stdout)).toMatchObject({
        size: 600,
        added: 600,
        repaired: ['entries'],
      });
      await expectRepaired(dir);
    });
  }

  for (const how of damages) {
    it(`checkpoint.previous.json ${how}: the state loads, the next sync writes it again`, async () => {
      const dir = await copyOfBase();
      await damage(join(dir, 'checkpoint.previous.json'), how);
      expect((await stateOf(dir)).checkpoint.checkpoint.size).toBe(600);
      expect((await openState(dir))?.rewrite).toBe(true);
      const synced = await sync(dir, world.mirror);
      expect(synced.exitCode, synced.stdout).toBe(0);
      await expectRepaired(dir);
    });
  }
});

describe('a state file over its cap', () => {
  /** `file` made one byte longer than `cap` with trailing spaces: still JSON, only too large. */
  const pad = async (file: string, cap: number) => {
    const bytes = await readFile(file);
    await writeFile(file, Buffer.concat([bytes, Buffer.alloc(cap + 1 - bytes.length, 0x20)]));
  };

  it('checkpoint.json over 1 MiB: named at load, repaired by vouch sync', async () => {
    const dir = await copyOfBase();
    await pad(join(dir, 'checkpoint.json'), 2 ** 20);
    expect((await loadError(dir)).message).toMatch(
      /checkpoint\.json: .*larger than 1048576 bytes.*run vouch sync /,
    );
    const repaired = await sync(dir, world.mirror);
    expect(repaired.exitCode, repaired.stdout).toBe(0);
    expect(JSON.parse(repaired.stdout)).toMatchObject({ repaired: ['checkpoint.json'] });
    await expectRepaired(dir);
  });

  it('status.json over 4 MiB: started afresh, never in the way of a verdict or a sync', async () => {
    const dir = await copyOfBase();
    await pad(join(dir, 'status.json'), 4 * 2 ** 20);
    const verdict = await runCli(['verify', 'digest', digestOf(5), '--state-dir', dir]);
    expect(verdict.exitCode, verdict.stderr).toBe(0);
    expect((await runCli(['status', '--state-dir', dir])).exitCode).toBe(0);
    expect((await sync(dir, world.mirror)).exitCode).toBe(0);
    const status = await runCli(['status', '--state-dir', dir, '-o', 'json']);
    expect(JSON.parse(status.stdout).lastSuccess.ok).toBe(true);
  });

  it('mirrors.json over 256 KiB: damaged, and vouch sync says so', async () => {
    const dir = await copyOfBase();
    await pad(join(dir, 'mirrors.json'), 256 * 1024);
    const plain = await runCli(['sync', '--state-dir', dir]);
    expect(plain.exitCode).toBe(64);
    expect(plain.stderr).toMatch(/mirrors\.json is damaged: .*larger than 262144 bytes/);
  });
});

describe('a damaged file that is not trust data', () => {
  for (const how of damages) {
    it(`status.json ${how}: started afresh`, async () => {
      const dir = await copyOfBase();
      await damage(join(dir, 'status.json'), how);
      await stateOf(dir);
      expect((await sync(dir, world.mirror)).exitCode).toBe(0);
      const status = await runCli(['status', '--state-dir', dir, '-o', 'json']);
      expect(status.exitCode, status.stderr).toBe(0);
      expect(JSON.parse(status.stdout).lastSuccess.ok).toBe(true);
      await expectRepaired(dir);
    });

    it(`mirrors.json ${how}: vouch sync says so and asks for --mirror, which writes it again`, async () => {
      const dir = await copyOfBase();
      await damage(join(dir, 'mirrors.json'), how);
      await stateOf(dir);
      const plain = await runCli(['sync', '--state-dir', dir]);
      expect(plain.exitCode).toBe(64);
      expect(plain.stderr).toMatch(
        how === 'deleted'
          ? /no mirror: give --mirror URL/
          : /no mirror: give --mirror URL .*mirrors\.json is damaged/,
      );
      expect((await sync(dir, world.mirror)).exitCode).toBe(0);
      const again = await runCli(['sync', '--state-dir', dir]);
      expect(again.exitCode, again.stderr).toBe(0);
      await expectRepaired(dir);
    });

    it(`fork.json ${how}: never dropped silently; vouch fork clear removes it`, async () => {
      const dir = await copyOfBase();
      const { note } = await stateOf(dir);
      await addForkEvidence(dir, {
        detectedAt: Date.now(),
        source: 'https://mirror.example/',
        reason: 'a checkpoint of the same size with another root',
        local: note,
        remote: note.replace(/\n600\n/, '\n600 \n'),
      });
      await damage(join(dir, 'fork.json'), how);
      const status = await runCli(['status', '--state-dir', dir, '-o', 'json']);
      if (how === 'deleted') {
        // Indistinguishable from vouch fork clear (README "Device state").
        expect(JSON.parse(status.stdout).fork).toBeUndefined();
      } else {
        expect(status.exitCode).toBe(65);
        expect(JSON.parse(status.stdout).error.message).toMatch(
          /fork\.json is damaged .*keep a copy of it to inspect, then run vouch fork clear/,
        );
        const cleared = await runCli(['fork', 'clear', '--state-dir', dir]);
        expect(cleared.stdout).toMatch(/removed the damaged fork evidence file/);
      }
      expect((await runCli(['status', '--state-dir', dir])).exitCode).toBe(0);
      expect((await sync(dir, world.mirror)).exitCode).toBe(0);
      await expectRepaired(dir);
    });
  }
});

/** The world's log (same key and origin) with entry 299 changed, published at `size`. */
async function forkedMirror(size: number): Promise<string> {
  const dir = join(await mkdtemp(join(tmpdir(), 'vouch-fork-')), 'log');
  await initLog(dir, testOrigin, world.logKeyPath, world.logKey);
  const fork: World = { ...world, logDir: dir, size: 0 };
  const entries = Array.from({ length: size }, (_, i) =>
    statement(world, i, i === 299 ? 'untrusted' : 'trusted'),
  );
  await grow(fork, 0, entries);
  return pathToFileURL(publicDir(dir)).href;
}

describe('repairs are checked against the anchor', () => {
  for (const size of [600, 700]) {
    it(`a repair from a mirror of a forked tree of ${size} is refused, the evidence kept`, async () => {
      const dir = await copyOfBase();
      await damage(join(dir, 'index-600.bin'), 'deleted');
      const forked = await sync(dir, await forkedMirror(size));
      expect(forked.exitCode).toBe(65);
      expect(JSON.parse(forked.stdout).error.code).toBe('LOG_FORK');
      const status = await runCli(['status', '--state-dir', dir, '-o', 'json']);
      expect(status.exitCode).toBe(65); // still damaged: the fork was not taken
      expect(JSON.parse(status.stdout).error.message).toMatch(/index-600\.bin: is missing/);
      expect((await sync(dir, world.mirror)).exitCode).toBe(0);
      await expectRepaired(dir);
      const evidence = await runCli(['status', '--state-dir', dir, '-o', 'json']);
      expect(JSON.parse(evidence.stdout).fork).toHaveLength(1);
    });
  }

  it('a snapshot import repairs too, root files included, with no mirror', async () => {
    const snapshot = join(await mkdtemp(join(tmpdir(), 'vouch-snap-')), 'log.tar');
    const exported = await runCli(['snapshot', 'export', '--log', world.logDir, '--out', snapshot]);
    expect(exported.exitCode, exported.stderr).toBe(0);
    const dir = await copyOfBase();
    await damage(join(dir, 'roots/1.json'), 'flipped');
    await damage(join(dir, 'index-600.bin'), 'truncated');
    const imported = await runCli([
      'snapshot',
      'import',
      snapshot,
      '--state-dir',
      dir,
      '-o',
      'json',
    ]);
    expect(imported.exitCode, imported.stdout).toBe(0);
    expect(JSON.parse(imported.stdout).repaired.sort()).toEqual(['index-600.bin', 'roots/1.json']);
    await expectRepaired(dir);
  });

  it('with checkpoint.json gone, the previous checkpoint (300) is the anchor', async () => {
    const dir = await copyOfBase();
    await rm(join(dir, 'checkpoint.json'));
    expect((await loadError(dir)).message).toMatch(
      /checkpoint\.json: is missing; run vouch sync .*checkpoint\.previous\.json/,
    );
    // Not a new device: a first root is not enough to start again.
    const fresh = await runCli([
      'sync',
      '--state-dir',
      dir,
      '--root',
      world.rootPath,
      '--mirror',
      at100,
      '-o',
      'json',
    ]);
    expect(JSON.parse(fresh.stdout).error.code).toBe('LOG_ROLLBACK');
    expect((await sync(dir, world.mirror)).exitCode).toBe(0);
    await expectRepaired(dir);
  });

  it('the newer of the two checkpoints anchors, whichever file holds it', async () => {
    const dir = await copyOfBase();
    const current = await readFile(join(dir, 'checkpoint.json'));
    await cp(join(dir, 'checkpoint.previous.json'), join(dir, 'checkpoint.json'));
    await writeFile(join(dir, 'checkpoint.previous.json'), current);
    expect((await loadError(dir)).message).toMatch(
      /index-300\.bin: is missing; run vouch sync .*checkpoint\.previous\.json/,
    );
    const rollback = await sync(dir, at300);
    expect(JSON.parse(rollback.stdout).error.code).toBe('LOG_ROLLBACK');
    expect((await sync(dir, world.mirror)).exitCode).toBe(0);
    await expectRepaired(dir);
  });

  it('a flipped digit of the clock floor is seen (the record carries its own digest)', async () => {
    const dir = await copyOfBase();
    const path = join(dir, 'checkpoint.json');
    const text = await readFile(path, 'utf8');
    await writeFile(
      path,
      text.replace(
        /("clockFloor": \d+)(\d)/,
        (_, head: string, d: string) => head + (Number(d) ^ 1),
      ),
    );
    expect((await loadError(dir)).message).toMatch(
      /checkpoint\.json: does not match its own digest/,
    );
  });

  it('no verified checkpoint left: vouch state reset --root, and only then', async () => {
    const healthy = await copyOfBase();
    const refused = await runCli([
      'state',
      'reset',
      '--state-dir',
      healthy,
      '--root',
      world.rootPath,
      '--mirror',
      world.mirror,
    ]);
    expect(refused.exitCode).toBe(64);
    expect(refused.stderr).toMatch(/still has a verified checkpoint .*vouch sync repairs/);
    const forced = await runCli([
      'state',
      'reset',
      '--state-dir',
      healthy,
      '--root',
      world.rootPath,
      '--force',
    ]);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/^reset: .*size 0 → 600.*from file:/);
    await expectRepaired(healthy);

    const dir = await copyOfBase();
    await damage(join(dir, 'checkpoint.json'), 'flipped');
    await damage(join(dir, 'checkpoint.previous.json'), 'truncated');
    const error = await loadError(dir);
    expect(error.message).toMatch(/checkpoint\.json: .*checkpoint\.previous\.json: /);
    expect(error.message).toMatch(
      /no verified checkpoint survives: run vouch state reset --root ROOT/,
    );
    for (const argv of [[], ['--root', world.rootPath]]) {
      const stuck = await runCli(['sync', '--state-dir', dir, ...argv, '--mirror', world.mirror]);
      expect(stuck.exitCode).toBe(65);
      expect(stuck.stderr).toMatch(/vouch state reset --root ROOT/);
    }
    const reset = await resetState(dir);
    expect(reset.exitCode, reset.stderr).toBe(0);
    expect(reset.stdout).toMatch(/^reset: .*size 0 → 600/);
    await expectRepaired(dir);
  });

  it('state reset --help says what a reset loses', async () => {
    const help = await runCli(['state', 'reset', '--help']);
    expect(help.stdout).toMatch(/reset the trust state/);
    expect(help.stdout).toMatch(/loses the old checkpoint/);
    expect(help.stdout).toMatch(/rollback\s+and\s+fork\s+protection/);
  });
});

describe('a repair never takes the device back to an older root', () => {
  /**
   * Root v2 removes the signer of every statement: its statements stop counting (UNKNOWN).
   * The device synced under v1, then again under v2 at the same size, so checkpoint.json
   * holds the chain [1, 2] and checkpoint.previous.json [1]. The mirror `noV2` is the log
   * without roots/2.json (an old copy, or one that lost it).
   */
  let rotated: World;
  let device: string;
  let noV2: string;

  const copyOfDevice = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vouch-rotated-'));
    await cp(device, dir, { recursive: true });
    return dir;
  };
  const statusOf = async (dir: string) => {
    const verdict = verdictFor(await stateOf(dir), digestOf(0), Date.now());
    return 'status' in verdict ? verdict.status : verdict.outcome;
  };

  beforeAll(async () => {
    rotated = await testWorld();
    const v1 = serializeEnvelope(signRoot(rotated.root, [rotated.rootKey]));
    await publishRoot(rotated.logDir, new Uint8Array(Buffer.from(v1)));
    await grow(rotated, 3);
    device = await syncedDevice(rotated);
    expect(await statusOf(device)).toBe('TRUSTED');
    const v2 = { ...rotated.root, version: 2, signers: [] };
    await publishRoot(
      rotated.logDir,
      new Uint8Array(Buffer.from(serializeEnvelope(signRoot(v2, [rotated.rootKey])))),
    );
    const again = await sync(device, rotated.mirror);
    expect(again.exitCode, again.stdout).toBe(0);
    const state = await stateOf(device);
    expect(state.chain.map((root) => root.version)).toEqual([1, 2]);
    expect(await statusOf(device)).toBe('UNKNOWN');
    const copy = await mkdtemp(join(tmpdir(), 'vouch-no-v2-'));
    await cp(publicDir(rotated.logDir), copy, { recursive: true });
    await rm(join(copy, 'roots', '2.json'));
    noV2 = pathToFileURL(copy).href;
  }, 60_000);

  it('roots/2.json damaged: a mirror without it is refused, the file kept; one with it repairs', async () => {
    const dir = await copyOfDevice();
    await appendFile(join(dir, 'roots', '2.json'), 'x');
    const refused = await sync(dir, noV2);
    expect(refused.exitCode, refused.stdout).toBe(69);
    const { error } = JSON.parse(refused.stdout);
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toMatch(/has no roots\/2\.json.*verified trust root v2/);
    // Not deleted, not taken back to v1: still damaged, still named.
    expect(await readdir(join(dir, 'roots'))).toContain('2.json');
    expect((await loadError(dir)).message).toMatch(/roots\/2\.json: /);

    const repaired = await sync(dir, noV2, rotated.mirror);
    expect(repaired.exitCode, repaired.stdout).toBe(0);
    expect(JSON.parse(repaired.stdout)).toMatchObject({
      rootVersion: 2,
      repaired: ['roots/2.json'],
    });
    expect(await statusOf(dir)).toBe('UNKNOWN');
  });

  it('checkpoint.json damaged: the intact roots/2.json is taken again, not deleted', async () => {
    const dir = await copyOfDevice();
    await damage(join(dir, 'checkpoint.json'), 'flipped');
    const repaired = await sync(dir, noV2);
    expect(repaired.exitCode, repaired.stdout).toBe(0);
    expect(JSON.parse(repaired.stdout)).toMatchObject({
      rootVersion: 2,
      repaired: ['checkpoint.json'],
    });
    expect(await readdir(join(dir, 'roots'))).toEqual(['1.json', '2.json']);
    expect(await statusOf(dir)).toBe('UNKNOWN');
  });

  it('a root file beyond the committed chain (a commit cut short) is kept and taken', async () => {
    const dir = await copyOfDevice();
    // As a crash leaves it after roots/2.json was written, before checkpoint.json was.
    await cp(join(dir, 'checkpoint.previous.json'), join(dir, 'checkpoint.json'));
    expect((await stateOf(dir)).root.version).toBe(1);
    const synced = await sync(dir, noV2);
    expect(synced.exitCode, synced.stdout).toBe(0);
    expect(JSON.parse(synced.stdout)).toMatchObject({ rootVersion: 2, repaired: [] });
    expect(await statusOf(dir)).toBe('UNKNOWN');
  });
});

describe('both checkpoint files lost', () => {
  const resetAdvice = /no verified checkpoint survives: run vouch state reset --root ROOT/;

  it('is a damaged state, not a new device: vouch state reset --root, and only that', async () => {
    const dir = await copyOfBase();
    await rm(join(dir, 'checkpoint.json'));
    await rm(join(dir, 'checkpoint.previous.json'));
    const error = await loadError(dir);
    expect(error.message).toMatch(/checkpoint\.json: is missing; checkpoint\.previous\.json: /);
    expect(error.message).toMatch(resetAdvice);

    // Neither a first root on the command line nor one in the configuration starts it afresh
    // (from a mirror of 100 entries: that would be a rollback).
    const config = join(dir, 'vouch.yaml');
    await writeFile(config, `root: ${world.rootPath}\nmirrors: [${JSON.stringify(at100)}]\n`);
    for (const argv of [
      ['--root', world.rootPath, '--mirror', at100],
      ['--config', config],
    ]) {
      const stuck = await runCli(['sync', '--state-dir', dir, ...argv, '-o', 'json']);
      expect(stuck.exitCode, stuck.stdout).toBe(65);
      expect(JSON.parse(stuck.stdout).error).toMatchObject({ code: 'STATE_INVALID' });
      expect(JSON.parse(stuck.stdout).error.message).toMatch(resetAdvice);
    }
    // status and verify say the same, not "run vouch sync --root".
    const status = await runCli(['status', '--state-dir', dir]);
    expect(status.exitCode).toBe(65);
    const verify = await runCli(['verify', 'digest', '--state-dir', dir, digestOf(0)]);
    for (const output of [status.stderr, verify.stdout + verify.stderr]) {
      expect(output).toMatch(resetAdvice);
      expect(output).not.toMatch(/vouch sync --root/);
    }

    const reset = await resetState(dir);
    expect(reset.exitCode, reset.stderr).toBe(0);
    await expectRepaired(dir);
  });

  it('a first sync cut short before its commit still leaves a new device', async () => {
    // The files a first sync writes before checkpoint.json, as kill -9 leaves them there.
    const dir = await syncedDevice(world);
    await rm(join(dir, 'checkpoint.json'));
    await rm(join(dir, 'checkpoint.previous.json'));
    await writeFile(join(dir, 'first-sync'), '');
    expect(await loadState(dir)).toBeUndefined();
    const fresh = await runCli([
      'sync',
      '--state-dir',
      dir,
      '--root',
      world.rootPath,
      '--mirror',
      world.mirror,
    ]);
    expect(fresh.exitCode, fresh.stderr).toBe(0);
    await expectRepaired(dir);
    expect(await readdir(dir)).not.toContain('first-sync');
  });
});

describe('a state file that cannot be read as one', () => {
  const kinds = ['directory', 'FIFO'] as const;
  async function replace(path: string, kind: (typeof kinds)[number]): Promise<void> {
    await rm(path);
    if (kind === 'directory') {
      await mkdir(path);
      await writeFile(join(path, 'junk'), 'x');
    } else {
      execFileSync('mkfifo', [path]);
    }
  }

  // EIO (a bad block) cannot be made here; another file type in a state file's place goes
  // the same way (a read failure of that file, not of the device).
  for (const file of ['index-600.bin', 'entries', 'roots/2.json', 'checkpoint.json']) {
    for (const kind of kinds) {
      it(`${file} replaced by a ${kind}: named as damage, repaired by vouch sync`, async () => {
        const dir = await copyOfBase();
        await replace(join(dir, file), kind);
        const error = await loadError(dir);
        expect(error.message).toMatch(new RegExp(`${file.replace('.', '\\.')}: .*is a ${kind}`));
        expect(error.message).toMatch(/run vouch sync /);
        const repaired = await sync(dir, world.mirror);
        expect(repaired.exitCode, repaired.stdout).toBe(0);
        expect(JSON.parse(repaired.stdout)).toMatchObject({ size: 600, repaired: [file] });
        await expectRepaired(dir);
      });
    }
  }

  it('a state file this user may not read is an I/O error that says so, not damage', async () => {
    const dir = await copyOfBase();
    await chmod(dir, 0o755);
    await chmod(join(dir, 'checkpoint.json'), 0o600);
    const asNobody = process.getuid?.() === 0;
    if (asNobody) process.seteuid?.(65534);
    else await chmod(join(dir, 'checkpoint.json'), 0);
    try {
      const error = await rejectsWith(loadState(dir), 'IO');
      expect(error.message).toMatch(/checkpoint\.json: EACCES: permission denied/);
    } finally {
      if (asNobody) process.seteuid?.(0);
    }
  });
});
