/**
 * What the benchmarks of whole commands need: a published log of signed statements with its
 * trust root (as an author and a publisher make them), and the built CLI to run against it —
 * `node dist/vouch.cjs`, the bundle a device runs, start-up included.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import { promisify } from 'node:util';
import { addSignature, serializeEnvelope, signEnvelope } from '../../agent/core/dsse';
import { generateKey, namePublicKey, type PublicKey } from '../../agent/core/keys';
import { unsignedRoot } from '../../agent/core/root';
import {
  encodeStatement,
  type StatementStatus,
  type Subject,
  statementPayloadType,
} from '../../agent/core/statement';
import { appendEntries, initLog, publicDir, publishLog } from '../../agent/ledger';
import { scaled } from './harness';

export const exec = promisify(execFile);
export const benchOrigin = 'bench.example.org/log';
export const benchSigner = 'notary@example.org';

export interface BenchLog {
  readonly logDir: string;
  /** The signed trust root file, for `vouch sync --root`. */
  readonly rootPath: string;
  /** The published tiles: a file:// mirror. */
  readonly mirror: string;
  /** The signer's public key, and every envelope appended so far (for baselines). */
  readonly signerKey: PublicKey;
  readonly envelopes: readonly Buffer[];
  /** Appends statements about `subjects` (one envelope each; `trusted` unless told) and publishes. */
  add(subjects: readonly Subject[], status?: StatementStatus): Promise<void>;
}

/** A log in `base` whose root authorizes one signer for every name. */
export async function benchLog(base: string): Promise<BenchLog> {
  const logKey = generateKey();
  const signer = generateKey();
  const rootKey = generateKey();
  const keyPath = join(base, 'log.key');
  await writeFile(keyPath, logKey.privatePem, { mode: 0o600 });
  const logDir = join(base, 'log');
  await initLog(logDir, benchOrigin, keyPath, logKey.key);
  const root = {
    version: 1,
    expires: '2099-01-01T00:00:00Z',
    rootKeys: [namePublicKey('root', rootKey.key.raw)],
    threshold: 1,
    log: { origin: benchOrigin, key: namePublicKey(benchOrigin, logKey.key.raw) },
    witnesses: [],
    witnessQuorum: 0,
    signers: [
      { id: benchSigner, keys: [namePublicKey(benchSigner, signer.key.raw)], scopes: ['**'] },
    ],
  };
  const rootPath = join(base, 'root.json');
  await writeFile(rootPath, serializeEnvelope(addSignature(unsignedRoot(root), rootKey.key)));
  let issued = Date.UTC(2025, 0, 1);
  const appended: Buffer[] = [];
  return {
    signerKey: root.signers[0]?.keys[0] as PublicKey,
    envelopes: appended,
    logDir,
    rootPath,
    mirror: `file://${publicDir(logDir)}`,
    async add(subjects, status = 'trusted') {
      const envelopes = subjects.map((subject) => {
        issued += 1000;
        const payload = encodeStatement({
          subjects: [subject],
          status,
          signer: benchSigner,
          issuedAt: new Date(issued),
        });
        return Buffer.from(
          serializeEnvelope(signEnvelope(statementPayloadType, payload, signer.key)),
        );
      });
      await appendEntries(logDir, envelopes);
      appended.push(...envelopes);
      await publishLog(logDir, logKey.key);
    },
  };
}

/** The built CLI; `build()` makes it once per bench run. */
export const cliPath = join(import.meta.dirname, '..', '..', 'dist', 'vouch.cjs');

let built: Promise<unknown> | undefined;
function build(): Promise<unknown> {
  built ??= exec('npx', ['tsx', 'scripts/build.ts']);
  return built;
}

/**
 * Runs `vouch ARGS` from the bundle under GNU time: its wall time and peak RSS (KiB; null
 * where GNU time is not installed).
 */
export async function vouch(
  args: readonly string[],
): Promise<{ code: number; seconds: number; maxRssKiB: number | null }> {
  await build();
  const gnuTime = existsSync('/usr/bin/time') ? ['/usr/bin/time', '-f', 'maxrss=%M'] : [];
  const [command = '', ...rest] = [...gnuTime, process.execPath, cliPath, ...args];
  const start = process.hrtime.bigint();
  const result = await exec(command, rest, { maxBuffer: 64 * 2 ** 20 }).then(
    ({ stderr }) => ({ code: 0, stderr }),
    (error: { code?: unknown; stderr?: string }) => {
      if (typeof error.code !== 'number') throw error;
      return { code: error.code, stderr: error.stderr ?? '' };
    },
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const rss = /maxrss=(\d+)/.exec(result.stderr)?.[1];
  return { code: result.code, seconds, maxRssKiB: rss === undefined ? null : Number(rss) };
}

/** A fresh device state synced from `log`. */
export async function syncedState(base: string, log: BenchLog): Promise<string> {
  const stateDir = await mkdtemp(join(base, 'state-'));
  const { code } = await vouch([
    'sync',
    '--state-dir',
    stateDir,
    '--root',
    log.rootPath,
    '--mirror',
    log.mirror,
    '--log-level',
    'error',
  ]);
  if (code !== 0) throw new Error(`vouch sync exited with ${code}`);
  return stateDir;
}

const MiB = 2 ** 20;

/** The hashing benchmarks' sizes: 1 GiB and 8 × 128 MiB (64 MiB and 8 × 8 MiB when quick). */
export const hashingSizes = { one: scaled(1024, 64) * MiB, part: scaled(128, 8) * MiB, parts: 8 };

/** "1 GiB", "128 MiB": a size in a figure's name. */
export function sizeName(bytes: number): string {
  return bytes >= 2 ** 30 ? `${bytes / 2 ** 30} GiB` : `${bytes / MiB} MiB`;
}

/**
 * The hashing benchmarks' files in `dir` (`hashingSizes`), of random bytes (a block of up to
 * 16 MiB repeated: incompressible, and quick to write).
 */
export function hashingFiles(dir: string): { oneGiB: string; parts: string[] } {
  const block = randomBytes(Math.min(16 * MiB, hashingSizes.part));
  const write = (name: string, bytes: number) => {
    const path = join(dir, name);
    const fd = openSync(path, 'w');
    for (let at = 0; at < bytes; at += block.length) writeSync(fd, block, 0, block.length);
    closeSync(fd);
    return path;
  };
  return {
    oneGiB: write('one-gib', hashingSizes.one),
    parts: Array.from({ length: hashingSizes.parts }, (_, i) =>
      write(`part-${i}`, hashingSizes.part),
    ),
  };
}

/**
 * A static file server on 127.0.0.1 for the files under `root` (the mirrors of the
 * benchmarks of sync: vouch's tiles and a TUF repository alike); `url` ends in a slash.
 */
export async function staticServer(root: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(async (req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    try {
      const bytes = await readFile(join(root, path));
      res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
