import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serializeEnvelope } from '../../agent/core/dsse';
import { namePublicKey } from '../../agent/core/keys';
import type { Root } from '../../agent/core/root';
import { syncFromMirrors } from '../../agent/device';
import {
  type LogServer,
  publicDir,
  publishedRootVersions,
  publishRoot,
  serveLog,
} from '../../agent/ledger';
import { createLogger } from '../../agent/logger';
import { runCli } from '../helpers/cli';
import { grow, stateOf, testWorld, type World } from '../helpers/device';
import { rejectsWith } from '../helpers/errors';
import { signRoot, type TestKey, testKey } from '../helpers/trust';

let world: World;
let newRootKey: TestKey;
const bytes = (root: Root, signers: readonly TestKey[]) =>
  new Uint8Array(Buffer.from(serializeEnvelope(signRoot(root, signers))));

beforeAll(async () => {
  world = await testWorld();
  newRootKey = testKey('root-2');
  await grow(world, 20);
});

describe('publishing the trust root chain beside the tiles', () => {
  it('publishes the first root, and the same root again changes nothing', async () => {
    const v1 = bytes(world.root, [world.rootKey]);
    expect(await publishedRootVersions(world.logDir)).toEqual([]);
    expect(await publishRoot(world.logDir, v1)).toEqual({ version: 1, written: true });
    expect(await publishRoot(world.logDir, v1)).toEqual({ version: 1, written: false });
    expect(await readdir(join(publicDir(world.logDir), 'roots'))).toEqual(['1.json']);
  });

  it('refuses a root that is not a valid rotation from the newest published', async () => {
    const v2 = { ...world.root, version: 2, rootKeys: [newRootKey.public] };
    // Signed by the new key only: the old threshold is missing.
    await rejectsWith(
      publishRoot(world.logDir, bytes(v2, [newRootKey])),
      'ROOT_PREVIOUS_THRESHOLD',
    );
    // A version that skips one.
    await rejectsWith(
      publishRoot(world.logDir, bytes({ ...v2, version: 3 }, [world.rootKey, newRootKey])),
      'ROOT_VERSION_SKIP',
    );
    // Another version 1 than the one published.
    await rejectsWith(
      publishRoot(
        world.logDir,
        bytes({ ...world.root, expires: '2098-01-01T00:00:00Z' }, [world.rootKey]),
      ),
      'ROOT_ROLLBACK',
    );
    // A root for another log.
    const otherLog = testKey('other.example/log');
    await rejectsWith(
      publishRoot(
        world.logDir,
        bytes(
          {
            ...v2,
            log: {
              origin: 'other.example/log',
              key: namePublicKey('other.example/log', otherLog.public.raw),
            },
          },
          [world.rootKey, newRootKey],
        ),
      ),
      'ROOT_INVALID',
    );
    expect(await publishedRootVersions(world.logDir)).toEqual([1]);
  });

  describe('served by vouch log serve', () => {
    let server: LogServer;
    beforeAll(async () => {
      server = await serveLog(world.logDir, { port: 0 });
    });
    afterAll(async () => {
      await server.close();
    });

    it('is served as JSON, and a device syncing from the server takes the rotation', async () => {
      const stateDir = await mkdtemp(join(tmpdir(), 'vouch-roots-device-'));
      const options = {
        stateDir,
        mirrors: [server.url],
        timeoutMs: 5000,
        maxBundleBytes: 1 << 24,
        logger: createLogger('cli', 'silent'),
      };
      await syncFromMirrors({ ...options, rootPath: world.rootPath });
      expect((await stateOf(stateDir)).root.version).toBe(1);

      // The publisher rotates the root key: v2 signed by the old key and the new one.
      const v2 = bytes({ ...world.root, version: 2, rootKeys: [newRootKey.public] }, [
        world.rootKey,
        newRootKey,
      ]);
      const published = await runCli([
        'log',
        'publish-root',
        world.logDir,
        await writeTemp(v2),
        '-o',
        'json',
      ]);
      expect(published.exitCode).toBe(0);
      expect(JSON.parse(published.stdout)).toEqual({ version: 2, written: true });

      const response = await fetch(new URL('roots/2.json', server.url));
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('application/json');
      expect(new Uint8Array(await response.arrayBuffer())).toEqual(v2);
      expect((await fetch(new URL('roots/3.json', server.url))).status).toBe(404);
      expect((await fetch(new URL('roots/', server.url))).status).toBe(404);

      await syncFromMirrors(options);
      const state = await stateOf(stateDir);
      expect(state.root.version).toBe(2);
      expect(state.root.rootKeys.map((key) => key.name)).toEqual(['root-2']);
    });
  });
});

async function writeTemp(content: Uint8Array): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'vouch-root-file-')), 'root.json');
  await writeFile(path, content);
  return path;
}
