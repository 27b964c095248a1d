import { createHash } from 'node:crypto';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadState, readForkEvidence } from '../../../agent/device';
import { sealRecord } from '../../../agent/device/store/sealed';
import { openState } from '../../../agent/device/store/state';
import { runCli } from '../../helpers/cli';
import { grow, stateOf, testWorld, type World } from '../../helpers/device';
import { rejectsWith } from '../../helpers/errors';

/** Loading verifies the committed state; leftovers of interrupted syncs are cleaned up. */

let world: World;
let synced: string;

async function copy(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vouch-state-'));
  await cp(synced, dir, { recursive: true });
  return dir;
}

const loadError = (dir: string) => rejectsWith(loadState(dir), 'STATE_INVALID');

type Record = { [field: string]: unknown };

/** Changes checkpoint.json and seals it again, so that the checks behind the seal are tested. */
async function editCommit(dir: string, edit: (record: Record) => void): Promise<void> {
  const path = join(dir, 'checkpoint.json');
  const { recordSha256: _, ...record } = JSON.parse(await readFile(path, 'utf8'));
  edit(record);
  await writeFile(path, sealRecord(record));
}

/** checkpoint.json as the version before damage detection wrote it (vouch-state/v1). */
async function asV1(dir: string): Promise<void> {
  const path = join(dir, 'checkpoint.json');
  const { recordSha256: _, roots: __, ...record } = JSON.parse(await readFile(path, 'utf8'));
  const v1 = { ...record, format: 'vouch-state/v1', entries: { bytes: record.entries.bytes } };
  await writeFile(path, JSON.stringify(v1, null, 2));
  await rm(join(dir, 'checkpoint.previous.json'));
}

const sync = (dir: string) => runCli(['sync', '--state-dir', dir, '--mirror', world.mirror]);

beforeAll(async () => {
  world = await testWorld({ witness: true });
  await grow(world, 40);
  synced = await mkdtemp(join(tmpdir(), 'vouch-state-'));
  const result = await runCli([
    'sync',
    '--state-dir',
    synced,
    '--root',
    world.rootPath,
    '--mirror',
    world.mirror,
  ]);
  expect(result.exitCode, result.stderr).toBe(0);
});

describe('loadState', () => {
  it('verifies the commit: its seal, index digest, compact range, checkpoint, root chain', async () => {
    const index = await copy();
    const indexFile = join(index, 'index-40.bin');
    const bytes = await readFile(indexFile);
    bytes[100] = (bytes[100] as number) ^ 1;
    await writeFile(indexFile, bytes);
    expect((await loadError(index)).message).toMatch(
      /index-40\.bin: does not match its committed digest/,
    );

    const sealed = await copy();
    const text = await readFile(join(sealed, 'checkpoint.json'), 'utf8');
    await writeFile(join(sealed, 'checkpoint.json'), text.replace('"bytes": ', '"bytes": 1'));
    expect((await loadError(sealed)).message).toMatch(
      /checkpoint\.json: does not match its own digest/,
    );

    const range = await copy();
    await editCommit(range, (record) => {
      (record.range as string[])[0] = Buffer.alloc(32).toString('base64');
    });
    expect((await loadError(range)).message).toMatch(
      /checkpoint\.json: the compact range does not give the checkpoint root/,
    );

    const note = await copy();
    await editCommit(note, (record) => {
      record.checkpoint = (record.checkpoint as string).replace('\n40\n', '\n41\n');
    });
    expect((await loadError(note)).message).toMatch(/checkpoint\.json: .*signature/);

    const roots = await copy();
    await writeFile(join(roots, 'roots', '1.json'), '{}');
    expect((await loadError(roots)).message).toMatch(
      /roots\/1\.json: does not match the SHA-256 its commit records/,
    );

    const entries = await copy();
    await writeFile(join(entries, 'entries'), 'short');
    expect((await loadError(entries)).message).toMatch(/entries: holds 5 bytes/);
  });

  it('keeps the digest of the entries as they grow, and the commit before as the previous one', async () => {
    const dir = await copy();
    const before = await readFile(join(dir, 'checkpoint.json'));
    await grow(world, 10);
    expect((await sync(dir)).exitCode).toBe(0);
    expect(await readFile(join(dir, 'checkpoint.previous.json'))).toEqual(before);
    const record = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8'));
    const entries = (await readFile(join(dir, 'entries'))).subarray(0, record.entries.bytes);
    expect(record.entries.sha256).toBe(createHash('sha256').update(entries).digest('hex'));
    expect((await openState(dir))?.rewrite).toBe(false);
  });

  it('reads a commit of the earlier version (v1), and a sync rewrites it', async () => {
    const dir = await copy();
    await asV1(dir);
    const v1 = await readFile(join(dir, 'checkpoint.json'));
    expect((await stateOf(dir)).entriesSha256).toBeUndefined();
    expect((await openState(dir))?.rewrite).toBe(true);
    const again = await sync(dir);
    expect(again.exitCode, again.stderr).toBe(0);
    const record = JSON.parse(await readFile(join(dir, 'checkpoint.json'), 'utf8'));
    expect(record.format).toBe('vouch-state/v2');
    expect(await readFile(join(dir, 'checkpoint.previous.json'))).toEqual(v1);
    expect((await openState(dir))?.rewrite).toBe(false);

    // Its entries have no digest: the sync hashes them into the tree, which must give the root.
    const damaged = await copy();
    await asV1(damaged);
    const path = join(damaged, 'entries');
    const bytes = await readFile(path);
    bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 1;
    await writeFile(path, bytes);
    const repaired = await runCli([
      'sync',
      '--state-dir',
      damaged,
      '--mirror',
      world.mirror,
      '-o',
      'json',
    ]);
    expect(JSON.parse(repaired.stdout)).toMatchObject({ repaired: ['entries'] });
  });

  it('reads fork evidence written as a bare array (before fork.json was sealed)', async () => {
    const dir = await copy();
    const { note } = await stateOf(dir);
    const item = { detectedAt: 1, source: 's', reason: 'r', local: note, remote: note };
    await writeFile(join(dir, 'fork.json'), JSON.stringify([item]));
    expect(await readForkEvidence(dir)).toEqual([item]);
  });

  it('removes what no commit names at the next sync, and nothing without a verified commit', async () => {
    const dir = await copy();
    await writeFile(join(dir, 'index-99.bin'), 'left over');
    await writeFile(join(dir, '.checkpoint.json.abc.tmp'), 'left over');
    await writeFile(join(dir, 'roots', '7.json'), 'left over');
    const again = await sync(dir);
    expect(again.exitCode, again.stderr).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(
      [
        'checkpoint.json',
        'checkpoint.previous.json',
        'entries',
        `index-${world.size}.bin`,
        'mirrors.json',
        'roots',
        'status.json',
      ].sort(),
    );
    expect(await readdir(join(dir, 'roots'))).toEqual(['1.json']);

    await writeFile(join(dir, 'checkpoint.json'), '{"not":"a commit"');
    await writeFile(join(dir, 'checkpoint.previous.json'), '');
    await writeFile(join(dir, 'index-99.bin'), 'left over');
    const broken = await sync(dir);
    expect(broken.exitCode).toBe(65);
    expect(broken.stderr).toMatch(/checkpoint\.json: state commit is not valid JSON/);
    expect(broken.stderr).toMatch(/no verified checkpoint survives/);
    expect(await readdir(dir)).toContain('index-99.bin');
    expect(await readdir(dir)).toContain(`index-${world.size}.bin`);
    expect(await readdir(join(dir, 'roots'))).toEqual(['1.json']);
  });
});
