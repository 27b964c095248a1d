import { cp, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { VouchError } from '../../../agent/core/errors';
import { loadState } from '../../../agent/device';
import { runCli } from '../../helpers/cli';
import { grow, testWorld, type World } from '../../helpers/device';

/** Loading verifies the committed state; leftovers of interrupted syncs are cleaned up. */

let world: World;
let synced: string;

async function copy(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vouch-state-'));
  await cp(synced, dir, { recursive: true });
  return dir;
}

async function loadError(dir: string): Promise<VouchError> {
  const error = await loadState(dir).then(
    () => expect.unreachable('a damaged state loaded'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(VouchError);
  return error as VouchError;
}

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
  it('verifies the commit: index digest, compact range, checkpoint signatures, root chain', async () => {
    const index = await copy();
    const indexFile = join(index, 'index-40.bin');
    const bytes = await readFile(indexFile);
    bytes[100] = (bytes[100] as number) ^ 1;
    await writeFile(indexFile, bytes);
    expect((await loadError(index)).message).toMatch(/does not match its committed digest/);

    const range = await copy();
    const commit = JSON.parse(await readFile(join(range, 'checkpoint.json'), 'utf8'));
    commit.range[0] = Buffer.alloc(32).toString('base64');
    await writeFile(join(range, 'checkpoint.json'), JSON.stringify(commit));
    expect((await loadError(range)).message).toMatch(
      /compact range does not give the checkpoint root/,
    );

    const note = await copy();
    const signed = JSON.parse(await readFile(join(note, 'checkpoint.json'), 'utf8'));
    signed.checkpoint = signed.checkpoint.replace('\n40\n', '\n41\n');
    await writeFile(join(note, 'checkpoint.json'), JSON.stringify(signed));
    expect((await loadError(note)).code).toBe('STATE_INVALID');

    const roots = await copy();
    await writeFile(join(roots, 'roots', '1.json'), '{}');
    expect((await loadError(roots)).code).toBe('STATE_INVALID');

    const entries = await copy();
    await writeFile(join(entries, 'entries'), 'short');
    expect((await loadError(entries)).message).toMatch(/entries holds 5 bytes/);
  });

  it('removes what no commit names at the next sync, and nothing when the commit is unreadable', async () => {
    const dir = await copy();
    await writeFile(join(dir, 'index-99.bin'), 'left over');
    await writeFile(join(dir, '.checkpoint.json.abc.tmp'), 'left over');
    await writeFile(join(dir, 'roots', '7.json'), 'left over');
    const again = await runCli(['sync', '--state-dir', dir, '--mirror', world.mirror]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(
      ['checkpoint.json', 'entries', 'index-40.bin', 'roots', 'status.json'].sort(),
    );
    expect(await readdir(join(dir, 'roots'))).toEqual(['1.json']);

    await writeFile(join(dir, 'checkpoint.json'), '{"not":"a commit"');
    const broken = await runCli(['sync', '--state-dir', dir, '--mirror', world.mirror]);
    expect(broken.exitCode).toBe(65);
    expect(broken.stderr).toMatch(/state commit is not valid JSON/);
    expect(await readdir(dir)).toContain('index-40.bin');
    expect(await readdir(join(dir, 'roots'))).toEqual(['1.json']);
  });
});
