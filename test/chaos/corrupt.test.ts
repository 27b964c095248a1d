import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serializeEnvelope } from '../../agent/core/dsse';
import { publicDir, publishRoot } from '../../agent/ledger';
import { runCli } from '../helpers/cli';
import { digestOf, grow, statement, syncedDevice, testWorld, type World } from '../helpers/device';
import { signRoot } from '../helpers/trust';
import { copyOf, full, random } from './chaos';

/**
 * Every file of a device's state directory (docs/formats.md "Device state directory")
 * corrupted in turn: a bit flipped at a random offset, cut at a random length, emptied.
 * A verdict is then either refused or the truth — never TRUSTED (or any other status)
 * where the log says otherwise — and the next `vouch sync` leaves a state that answers
 * the truth. `npm test`: one random corruption per file; the full run: each kind, 4 times.
 */

const draw = random('corrupt');
let world: World;
let base: string;
const removed: string[] = [];

/** Subjects and what the log says of each. */
const truth: Record<string, string> = {
  [digestOf(0)]: 'TRUSTED',
  [digestOf(1)]: 'UNTRUSTED',
  [digestOf(2)]: 'REVOKED',
  [digestOf(250)]: 'TRUSTED',
  [digestOf(10_000)]: 'UNKNOWN',
};

const kinds = ['flipped', 'truncated', 'emptied'] as const;
type Kind = (typeof kinds)[number];

async function corrupt(path: string, kind: Kind): Promise<string> {
  const bytes = await readFile(path);
  if (kind === 'emptied' || bytes.length === 0) {
    await writeFile(path, '');
    return 'emptied';
  }
  const at = Math.floor(draw() * bytes.length);
  if (kind === 'truncated') {
    await writeFile(path, bytes.subarray(0, at));
    return `cut to ${at} of ${bytes.length} bytes`;
  }
  const bit = Math.floor(draw() * 8);
  bytes[at] = (bytes[at] as number) ^ (1 << bit);
  await writeFile(path, bytes);
  return `bit ${bit} of byte ${at} of ${bytes.length} flipped`;
}

/** What `vouch verify digest` answers for each subject: its status, or "refused". */
async function verdicts(dir: string, what: string): Promise<Record<string, string>> {
  const answers: Record<string, string> = {};
  for (const digest of Object.keys(truth)) {
    const { exitCode, stdout, stderr } = await runCli([
      'verify',
      'digest',
      '--state-dir',
      dir,
      digest,
      '-o',
      'json',
    ]);
    const printed = JSON.parse(stdout || '{}');
    const status = printed.results?.[0]?.status as string | undefined;
    // A refusal says why, with the state's own exit code (65), never a status.
    if (status === undefined) {
      expect(exitCode, `${what}: ${stdout}${stderr}`).toBe(65);
      expect(printed.error?.code, `${what}: ${stderr}`).toBe('STATE_INVALID');
    }
    answers[digest] = status ?? 'refused';
  }
  return answers;
}

beforeAll(async () => {
  world = await testWorld();
  // The mirror serves the root too, so that a damaged roots/1.json can come back.
  const v1 = serializeEnvelope(signRoot(world.root, [world.rootKey]));
  await publishRoot(world.logDir, new Uint8Array(Buffer.from(v1)));
  await grow(world, 0, [
    statement(world, 0),
    statement(world, 1, 'untrusted'),
    statement(world, 2),
    statement(world, 2, 'revoked'),
  ]);
  await grow(
    world,
    0,
    Array.from({ length: 146 }, (_, i) => statement(world, 3 + i)),
  );
  base = await syncedDevice(world);
  removed.push(base);
  await grow(
    world,
    0,
    Array.from({ length: 150 }, (_, i) => statement(world, 149 + i)),
  );
  const again = await runCli(['sync', '--state-dir', base, '--mirror', world.mirror]);
  expect(again.exitCode, again.stderr).toBe(0);
  const answers = await verdicts(base, 'intact');
  expect(answers).toEqual(truth);
}, 120_000);

afterAll(async () => {
  for (const dir of removed) await rm(dir, { recursive: true, force: true });
});

describe('every state file corrupted in turn', () => {
  it('is refused or answers the truth, and vouch sync brings the truth back', async () => {
    const files: string[] = [];
    for (const name of await readdir(base, { recursive: true })) {
      if ((await stat(join(base, name))).isFile()) files.push(name);
    }
    // The files a synced device has (the lock is taken only while a sync runs).
    expect(files.sort()).toEqual(
      [
        'checkpoint.json',
        'checkpoint.previous.json',
        'entries',
        'index-300.bin',
        'mirrors.json',
        'roots/1.json',
        'status.json',
      ].sort(),
    );
    const mirror = pathToFileURL(publicDir(world.logDir)).href;
    const outcomes: Record<string, number> = {};
    for (const file of files) {
      const cases = full
        ? kinds.flatMap((kind) => Array<Kind>(4).fill(kind))
        : [kinds[Math.floor(draw() * kinds.length)] as Kind];
      for (const kind of cases) {
        const dir = await copyOf(base);
        const how = await corrupt(join(dir, file), kind);
        const what = `${file} ${how}`;
        const answers = await verdicts(dir, what);
        for (const [digest, status] of Object.entries(answers)) {
          if (status !== 'refused') expect(status, `${what}: ${digest}`).toBe(truth[digest]);
        }
        const refused = Object.values(answers).includes('refused');
        const outcome = `${file}: ${refused ? 'refused' : 'answered the truth'}`;
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
        const repaired = await runCli(['sync', '--state-dir', dir, '--mirror', mirror]);
        expect(repaired.exitCode, `${what}: ${repaired.stderr}`).toBe(0);
        expect(await verdicts(dir, `${what}, then synced`)).toEqual(truth);
        await rm(dir, { recursive: true });
      }
    }
    console.log(`chaos corrupt: ${JSON.stringify(outcomes)}`);
  }, 600_000);
});
