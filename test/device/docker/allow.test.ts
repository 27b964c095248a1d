import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type AllowEntry,
  addAllowEntry,
  allowEntryFor,
  readAllowList,
  removeAllowEntries,
} from '../../../agent/device/docker/allow';
import { stateFiles } from '../../../agent/device/store/state';
import { rejectsWith } from '../../helpers/errors';

const repo = join(__dirname, '../../..');
const idA = `sha256:${'a'.repeat(64)}`;
const idB = `sha256:${'b'.repeat(64)}`;

function entry(fields: Partial<AllowEntry>): AllowEntry {
  return {
    image: null,
    name: null,
    reason: 'vendor fix pending',
    at: '2026-01-01T00:00:00Z',
    by: 'root',
    ...fields,
  };
}

const tempDir = () => mkdtemp(join(tmpdir(), 'vouch-allow-'));

describe('allow-list', () => {
  it('is empty without a file, and keeps what is added across reads (a new reader)', async () => {
    const dir = join(await tempDir(), 'state');
    expect(await readAllowList(dir)).toEqual([]);
    const first = entry({ image: idA, name: 'ghcr.io/example/app:1' });
    expect(await addAllowEntry(dir, first)).toEqual([]);
    await addAllowEntry(dir, entry({ name: 'docker.io/library/tool:2' }));
    expect(await readAllowList(dir)).toEqual([first, entry({ name: 'docker.io/library/tool:2' })]);
  });

  it('replaces the entry for the same image ID (or the same name, for name entries)', async () => {
    const dir = await tempDir();
    const old = entry({ image: idA, name: 'ghcr.io/example/app:1' });
    await addAllowEntry(dir, old);
    await addAllowEntry(dir, entry({ name: 'ghcr.io/example/app:1' }));
    const again = entry({ image: idA, name: null, reason: 'new reason' });
    expect(await addAllowEntry(dir, again)).toEqual([old]);
    const byName = entry({ name: 'ghcr.io/example/app:1', reason: 'by name again' });
    expect(await addAllowEntry(dir, byName)).toEqual([entry({ name: 'ghcr.io/example/app:1' })]);
    expect(await readAllowList(dir)).toEqual([again, byName]);
  });

  it('removes by image ID or by the name an entry was made with; ALLOW_NOT_FOUND otherwise', async () => {
    const dir = await tempDir();
    const a = entry({ image: idA, name: 'ghcr.io/example/app:1' });
    const b = entry({ image: idB, name: null });
    const c = entry({ name: 'docker.io/library/tool:2' });
    for (const e of [a, b, c]) await addAllowEntry(dir, e);
    // The tag now points at another image (idB): the entry made under the name goes too.
    expect(await removeAllowEntries(dir, { image: idB, name: 'ghcr.io/example/app:1' })).toEqual([
      a,
      b,
    ]);
    expect(await readAllowList(dir)).toEqual([c]);
    await rejectsWith(removeAllowEntries(dir, { image: idA, name: null }), 'ALLOW_NOT_FOUND');
    expect(await removeAllowEntries(dir, { image: null, name: c.name })).toEqual([c]);
    expect(await readAllowList(dir)).toEqual([]);
  });

  it('applies to the exact image ID, else to an image carrying the name of a name entry', () => {
    const list = [
      entry({ image: idA, name: 'ghcr.io/example/app:1' }),
      entry({ name: 'x.io/y:1' }),
    ];
    expect(allowEntryFor(list, { id: idA, names: [] })).toBe(list[0]);
    // Same tag, another image: not allowed by the ID entry.
    expect(allowEntryFor(list, { id: idB, names: ['ghcr.io/example/app:1'] })).toBeUndefined();
    expect(allowEntryFor(list, { id: idB, names: ['x.io/y:1'] })).toBe(list[1]);
    expect(allowEntryFor(list, { id: null, names: [] })).toBeUndefined();
  });

  it('rejects a damaged file with STATE_INVALID', async () => {
    const dir = await tempDir();
    const path = join(dir, stateFiles.allow);
    for (const content of [
      '{"format":"vouch-allow/v1","entries":[',
      '{"format":"vouch-allow/v2","entries":[]}',
      JSON.stringify({ format: 'vouch-allow/v1', entries: [entry({ image: 'sha256:12' })] }),
      JSON.stringify({ format: 'vouch-allow/v1', entries: [entry({})] }),
      JSON.stringify({ format: 'vouch-allow/v1', entries: [entry({ reason: '' })] }),
    ]) {
      await writeFile(path, content);
      await rejectsWith(readAllowList(dir), 'STATE_INVALID');
    }
  });

  it('loses no entry when several writers add at once (the allow lock)', async () => {
    const dir = await tempDir();
    const ids = Array.from({ length: 8 }, (_, i) => `sha256:${i.toString(16).padStart(64, '0')}`);
    await Promise.all(ids.map((image) => addAllowEntry(dir, entry({ image }))));
    expect((await readAllowList(dir)).map((e) => e.image).sort()).toEqual(ids);
  });

  it('under kill -9 mid-write: always the old list or the new, never a torn one', async () => {
    const dir = await tempDir();
    let committed = 0;
    let killed = 0;
    // Each round kills the writer once it has added this many more entries.
    const rounds = [1, 4, 8];
    for (const added of rounds) {
      const child: ChildProcess = spawn(
        process.execPath,
        ['--import', 'tsx', 'test/device/docker/allow-child.ts', dir, String(committed)],
        { cwd: repo, stdio: 'ignore' },
      );
      const target = committed + added;
      while ((await readAllowList(dir).catch(() => [])).length < target) {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      child.kill('SIGKILL');
      if (child.exitCode === null) await once(child, 'exit');
      if (child.signalCode === 'SIGKILL') killed++;
      const reasons = (await readAllowList(dir)).map((e) => e.reason);
      // A prefix of entries 0, 1, 2, …: every write whole, none lost, none doubled.
      expect(reasons).toEqual(reasons.map((_, i) => `entry ${i}`));
      expect(reasons.length).toBeGreaterThanOrEqual(target);
      committed = reasons.length;
    }
    expect(killed).toBe(rounds.length);
    // Besides the list and its lock, only temp files of killed writes (of the list, or of
    // the lock's owner record) may be left; they are never read.
    const names = await readdir(dir);
    const expected = /^allow\.(json|lock)$|^\.allow\.json\..*\.tmp$|^allow\.lock\..*\.tmp$/;
    expect(names.filter((n) => !expected.test(n))).toEqual([]);
  }, 60_000);
});
