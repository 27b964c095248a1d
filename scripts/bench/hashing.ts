/**
 * SHA-256 on the data path: node:crypto against pure JS in memory, and files from the page
 * cache through the worker pool and the whole `vouch verify file` command (the built bundle,
 * start-up included, against a synced state) against openssl in the same run (issue #6) —
 * and against a bare Node program with the pool's own scheme (bare.cjs), which shows what is
 * Node's and the scheme's, and what is the CLI's.
 */

import { createHash } from 'node:crypto';
import { closeSync, openSync, truncateSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { type Digest, HashPool } from '../../agent/content/pool';
import { merkleLeafSize } from '../../agent/core/statement';
import { planHashing, readProfile } from '../../hw';
import { type Figure, runSuite, scaled, type Target } from './harness';
import { benchLog, exec, hashingFiles, hashingSizes, sizeName, syncedState, vouch } from './world';

const group = 'hashing';
const issue6 = 'issue 6: the whole command against openssl, start-up included';

export async function hashingBench(benchDir: string): Promise<Figure[]> {
  const data = Buffer.alloc(scaled(64, 16) * 2 ** 20, 0xa5);
  const chunk = 2 ** 20;
  const figures = await runSuite(group, {
    unit: 'B/s',
    cases: [
      {
        name: `SHA-256 of ${sizeName(data.length)} in memory: node:crypto one-shot`,
        units: data.length,
        run: () => createHash('sha256').update(data).digest(),
      },
      {
        name: 'node:crypto streamed in 1 MiB chunks',
        units: data.length,
        run: () => {
          const hash = createHash('sha256');
          for (let at = 0; at < data.length; at += chunk)
            hash.update(data.subarray(at, at + chunk));
          return hash.digest();
        },
      },
      { name: '@noble/hashes (pure JS)', units: data.length, run: () => nobleSha256(data) },
    ],
  });

  // Files hashed from the page cache through the worker pool, against openssl in the same run.
  const { oneGiB, parts } = hashingFiles(benchDir);
  const one = sizeName(hashingSizes.one);
  const eight = `${hashingSizes.parts} × ${sizeName(hashingSizes.part)}`;
  const plan = planHashing(await readProfile({ root: '/', paths: [benchDir] }));

  // A device state that trusts these files, for the whole `vouch verify file` command.
  const digester = new HashPool(plan);
  const files = [
    { name: 'one-gib', path: oneGiB },
    ...parts.map((path, i) => ({ name: `part-${i}`, path })),
  ];
  const digests = await Promise.all(files.map(({ path }) => digester.hash(path)));
  const merkle = await digester.hashChunked(oneGiB, merkleLeafSize);
  await digester.close();
  const log = await benchLog(await mkdtemp(join(benchDir, 'log-')));
  await log.add(files.map(({ name }, i) => ({ name, sha256: (digests[i] as Digest).sha256 })));
  const stateDir = await syncedState(benchDir, log);
  // Another device whose statement about the 1 GiB file also names its chunked digest
  // (`vouch sign --chunked`): kept apart, so the plain cases above stay plain.
  const chunkedLog = await benchLog(await mkdtemp(join(benchDir, 'log-')));
  await chunkedLog.add([
    { name: 'one-gib', sha256: (digests[0] as Digest).sha256, merkle: merkle.root },
  ]);
  const chunkedState = await syncedState(benchDir, chunkedLog);
  const verifyFiles = async (paths: readonly string[], ...flags: string[]) => {
    const state = flags.includes('--chunked') ? chunkedState : stateDir;
    const { code } = await vouch(['verify', 'file', ...flags, '--state-dir', state, ...paths]);
    if (code !== 0) throw new Error(`vouch verify file exited with ${code}, not 0 (TRUSTED)`);
  };
  const cores = cpus().length;
  const counts = [...new Set([1, 2, 4, 8, 16, 32].filter((n) => n < cores).concat(cores))];
  const pools = new Map(
    counts.map((n) => [
      n,
      new HashPool({ workers: n, chunkSize: MiB, inFlightBytes: 4 * n * MiB }),
    ]),
  );
  const planned = new HashPool(plan);
  const hashAll = (pool: HashPool) => Promise.all(parts.map((part) => pool.hash(part)));
  const within = (bound: number): Target => ({ on: 'ratio', op: '≤', bound, note: issue6 });
  try {
    // Times, not rates: the issue's targets are the command's time over openssl's.
    figures.push(
      ...(await runSuite(group, {
        cases: [
          {
            name: `${one} file: openssl dgst -sha256`,
            run: () => exec('openssl', ['dgst', '-sha256', oneGiB]),
          },
          {
            name: 'vouch verify file (whole command)',
            run: () => verifyFiles([oneGiB]),
            target: within(1.0),
          },
          {
            name: "bare Node, the pool's scheme (no CLI)",
            run: () => bare('plain', plan.chunkSize, oneGiB),
            note: bareNote,
          },
          {
            name: 'bare Node, main thread, no worker',
            run: () => bare('main', plan.chunkSize, oneGiB),
          },
          {
            name: 'vouch verify file --chunked (whole command)',
            run: () => verifyFiles([oneGiB], '--chunked'),
            target: within(0.6),
          },
          {
            name: `bare Node, chunked on ${plan.workers} workers`,
            run: () => bare('chunked', plan.workers, oneGiB),
          },
          { name: 'pool.hash (one worker reads ahead)', run: () => planned.hash(oneGiB) },
          {
            name: `pool.hashChunked, ${cores} workers`,
            run: () => (pools.get(cores) as HashPool).hashChunked(oneGiB, merkleLeafSize),
          },
        ],
      })),
      ...(await runSuite(group, {
        cases: [
          {
            name: `${eight}: xargs -P${cores} -n1 openssl dgst`,
            run: () =>
              exec('sh', [
                '-c',
                'ls "$1"/part-* | xargs -P"$2" -n1 openssl dgst -sha256',
                'sh',
                benchDir,
                String(cores),
              ]),
          },
          {
            name: `vouch verify file × ${hashingSizes.parts} (whole command)`,
            run: () => verifyFiles(parts),
            target: within(1.1),
          },
          {
            name: `bare Node, the pool's scheme, ${plan.workers} workers`,
            run: () => bare('files', plan.workers, ...parts),
          },
          {
            name: `pool.hash × ${hashingSizes.parts}, plan: ${plan.workers} workers`,
            run: () => hashAll(planned),
          },
        ],
      })),
      ...(await runSuite(group, {
        unit: 'B/s',
        cases: counts.map((n) => ({
          name: `${eight}: pool.hash on ${n} worker${n === 1 ? '' : 's'}`,
          units: hashingSizes.parts * hashingSizes.part,
          run: () => hashAll(pools.get(n) as HashPool),
        })),
      })),
    );
    // Memory whatever the size: a sparse file of 4 GiB (zeros, from the page cache) verified
    // by the whole command (it is in no statement: UNKNOWN, exit 2).
    const sparse = join(benchDir, 'sparse');
    const sparseBytes = scaled(4 * GiB, 256 * MiB);
    closeSync(openSync(sparse, 'w'));
    truncateSync(sparse, sparseBytes);
    const run = await vouch(['verify', 'file', '--state-dir', stateDir, sparse]);
    if (run.code !== 2) throw new Error(`vouch verify file exited with ${run.code}, not 2`);
    figures.push({
      group,
      name: `vouch verify file, ${sizeName(sparseBytes)} sparse file: peak RSS`,
      value: (run.maxRssKiB ?? Number.NaN) * 1024,
      unit: 'B',
      target: { on: 'value', op: '≤', bound: 96e6, note: 'issue 6: 96 MB whatever the size' },
      note: "one run, GNU time's maximum RSS (n/a without /usr/bin/time)",
    });
  } finally {
    await Promise.all([planned, ...pools.values()].map((pool) => pool.close()));
  }
  return figures;
}

const bareNote =
  "bare Node: scripts/bench/bare.cjs, a program that only reads and hashes (Node's start and " +
  "a worker's boot included, no CLI, configuration or trust state)";

const MiB = 2 ** 20;
const GiB = 2 ** 30;

/** bare.cjs in a fresh process (start-up included, as for the command). */
function bare(mode: string, count: number, ...paths: string[]): Promise<unknown> {
  return exec(process.execPath, [bareScript, mode, String(count), ...paths]);
}

const bareScript = join(import.meta.dirname, 'bare.cjs');
