import { createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { serializeEnvelope } from '../../agent/core/dsse';
import { KeyType, namePublicKey, type PrivateKey } from '../../agent/core/keys';
import type { Root } from '../../agent/core/root';
import { loadState, type TrustState } from '../../agent/device';
import { addEnvelopes, cosignLog, publicDir, publishLog } from '../../agent/ledger';
import { runCli } from './cli';
import { tempLog, testOrigin } from './log';
import { signedStatement, signRoot, type TestKey, testKey, testRoot } from './trust';

/**
 * A publisher and its trust root for device tests: a log in a temp directory, a root
 * (v1, root key, one signer scoped to `ghcr.io/example/**`, optionally a witness), and
 * statements about distinct digests, appended and published through the ledger.
 */
export interface World {
  readonly base: string;
  readonly logDir: string;
  readonly logKey: PrivateKey;
  readonly logKeyPath: string;
  /** file:// URL of the log's published files. */
  readonly mirror: string;
  readonly rootKey: TestKey;
  readonly signer: TestKey;
  readonly witness: TestKey | undefined;
  readonly root: Root;
  /** The signed root v1 file. */
  readonly rootPath: string;
  /** Entries appended so far. */
  size: number;
}

export const signerId = 'notary@example.org';

/** The digest of statement i: distinct, reproducible. */
export function digestOf(i: number): string {
  return createHash('sha256').update(`subject ${i}`).digest('hex');
}

/** `createdAt`: when the log is created (its first signed time; publishing never goes back). */
export async function testWorld(
  options: { readonly witness?: boolean; readonly createdAt?: Date } = {},
): Promise<World> {
  const { dir: logDir, key: logKey, keyPath: logKeyPath } = await tempLog(options.createdAt);
  const base = await mkdtemp(join(tmpdir(), 'vouch-world-'));
  const rootKey = testKey('root-1');
  const signer = testKey(signerId);
  const witness = options.witness ? testKey('witness.example.org', KeyType.Cosignature) : undefined;
  const root = testRoot({
    rootKeys: [rootKey.public],
    threshold: 1,
    log: { origin: testOrigin, key: namePublicKey(testOrigin, logKey.raw) },
    witnesses: witness ? [witness.public] : [],
    witnessQuorum: witness ? 1 : 0,
    signers: [{ id: signerId, keys: [signer.public], scopes: ['ghcr.io/example/**'] }],
  });
  const rootPath = join(base, 'root.json');
  await writeFile(rootPath, serializeEnvelope(signRoot(root, [rootKey])));
  return {
    base,
    logDir,
    logKey,
    logKeyPath,
    mirror: pathToFileURL(publicDir(logDir)).href,
    rootKey,
    signer,
    witness,
    root,
    rootPath,
    size: 0,
  };
}

/** Statement i: `trusted` by the signer, unless `status` says otherwise. */
export function statement(
  world: World,
  i: number,
  status: 'trusted' | 'revoked' | 'untrusted' = 'trusted',
): Uint8Array {
  return signedStatement(world.signer, {
    signer: signerId,
    subjects: [{ name: `ghcr.io/example/app-${i}:1.0`, sha256: digestOf(i) }],
    status,
    issuedAt: new Date(Date.UTC(2025, 5, 1) + i * 1000),
  });
}

/**
 * Appends statements for subjects from..to-1 (or the given entries), publishes (signed at
 * `now`), cosigns.
 */
export async function grow(
  world: World,
  count: number,
  entries?: readonly Uint8Array[],
  now = new Date(),
): Promise<void> {
  const added =
    entries ?? Array.from({ length: count }, (_, i) => statement(world, world.size + i));
  await addEnvelopes(world.logDir, world.root, added, now);
  world.size += added.length;
  await publishLog(world.logDir, world.logKey, now);
  if (world.witness) {
    await cosignLog(
      world.logDir,
      world.witness.private,
      world.witness.public.name,
      // Each cosignature a second later than the one before.
      new Date(now.getTime() + world.size * 1000),
    );
  }
}

/** A new device's state directory after its first `vouch sync --root --mirror` from `world`. */
export async function syncedDevice(world: World): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vouch-device-'));
  const argv = ['sync', '--state-dir', dir, '--root', world.rootPath, '--mirror', world.mirror];
  const first = await runCli(argv);
  if (first.exitCode !== 0) throw new Error(`first sync failed: ${first.stderr}`);
  return dir;
}

/** The committed state of `dir`, which must have one. */
export async function stateOf(dir: string): Promise<TrustState> {
  const state = await loadState(dir);
  if (!state) throw new Error(`no trust state in ${dir}`);
  return state;
}

/** The CLI bundle a device runs, built once per test run by test/global-setup.ts. */
export const cliBundle = fileURLToPath(new URL('../../dist/vouch.cjs', import.meta.url));
