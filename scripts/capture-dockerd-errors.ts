/**
 * Captures this machine's dockerd's answers in the situations whose error text decides a
 * verdict (scripts/lib/dockerd-errors.ts), on vfs and on overlay2 storage, as fixtures:
 * `test/fixtures/dockerd/<version>/<storage driver>/<situation>.json`. Run it as root when
 * the tests meet a dockerd version that has none (the live test in
 * test/device/docker/daemon-errors.test.ts says so), then add the version to the rows'
 * `seenWith` in agent/device/docker/daemon-errors.ts:
 *
 *   npx tsx scripts/capture-dockerd-errors.ts
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type Dockerd, startDockerd } from './lib/dockerd';
import { fixturePath, provokeAll } from './lib/dockerd-errors';

for (const storageDriver of ['vfs', 'overlay2'] as const) {
  let daemon: Dockerd;
  try {
    daemon = await startDockerd({ storageDriver });
  } catch (error) {
    // overlay2 needs overlay mounts, which not every container allows.
    console.error(`no dockerd on ${storageDriver}: ${(error as Error).message}`);
    continue;
  }
  try {
    for (const answer of await provokeAll(daemon)) {
      const path = fixturePath(answer);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, `${JSON.stringify(answer, null, 2)}\n`);
      console.log(`${path}: HTTP ${answer.status}`);
    }
  } finally {
    await daemon.stop();
  }
}
