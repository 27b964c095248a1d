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
import { runSuite, type Suite } from './harness';
import { benchLog, exec, hashingFiles, syncedState, vouch } from './world';

export async function hashingBench(benchDir: string): Promise<void> {
  const data = Buffer.alloc(64 * 2 ** 20, 0xa5);
  const chunk = 2 ** 20;

  const suites: Suite[] = [
    {
      title: 'SHA-256 of 64 MiB in memory, one core',
      unit: 'B',
      repeats: 5,
      cases: [
        {
          name: 'node:crypto one-shot (baseline)',
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
    },
  ];

  // Files hashed from the page cache through the worker pool, against openssl in the same run.
  const MiB = 2 ** 20;
  const GiB = 2 ** 30;
  const { oneGiB, parts } = hashingFiles(benchDir);
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
  suites.push(
    {
      title: 'SHA-256 of one 1 GiB file (page cache)',
      unit: 'B',
      repeats: 5,
      cases: [
        {
          name: 'openssl dgst -sha256 (baseline)',
          units: GiB,
          run: () => exec('openssl', ['dgst', '-sha256', oneGiB]),
        },
        { name: 'vouch verify file (whole command)', units: GiB, run: () => verifyFiles([oneGiB]) },
        {
          name: 'bare Node, same scheme (no CLI)',
          units: GiB,
          run: () => bare('plain', plan.chunkSize, oneGiB),
        },
        {
          name: 'bare Node, main thread, no worker',
          units: GiB,
          run: () => bare('main', plan.chunkSize, oneGiB),
        },
        {
          name: 'vouch verify file --chunked (command)',
          units: GiB,
          run: () => verifyFiles([oneGiB], '--chunked'),
        },
        {
          name: `bare Node, chunked on ${plan.workers} workers`,
          units: GiB,
          run: () => bare('chunked', plan.workers, oneGiB),
        },
        { name: 'pool.hash (one worker reads ahead)', units: GiB, run: () => planned.hash(oneGiB) },
        {
          name: `pool.hashChunked, ${cores} workers`,
          units: GiB,
          run: () => (pools.get(cores) as HashPool).hashChunked(oneGiB, merkleLeafSize),
        },
      ],
    },
    {
      title: '8 × 128 MiB files (page cache)',
      unit: 'B',
      repeats: 5,
      cases: [
        {
          name: `xargs -P${cores} -n1 openssl dgst (baseline)`,
          units: GiB,
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
          name: 'vouch verify file × 8 (whole command)',
          units: GiB,
          run: () => verifyFiles(parts),
        },
        {
          name: `bare Node, same scheme, ${plan.workers} workers`,
          units: GiB,
          run: () => bare('files', plan.workers, ...parts),
        },
        {
          name: `pool.hash × 8, plan: ${plan.workers} workers`,
          units: GiB,
          run: () => hashAll(planned),
        },
      ],
    },
    {
      title: 'Worker scaling: pool.hash × 8 of 128 MiB',
      unit: 'B',
      repeats: 3,
      cases: counts.map((n) => ({
        name: `${n} worker${n === 1 ? '' : 's'}`,
        units: GiB,
        run: () => hashAll(pools.get(n) as HashPool),
      })),
    },
  );
  try {
    const medians: number[][] = [];
    for (const suite of suites) medians.push(await runSuite(suite));
    const [, one = [], eight = []] = medians;
    printTargets([
      { name: '1 GiB, plain digest', against: 'openssl', target: 1.0, times: one, bare: [2, 3] },
      {
        name: '1 GiB, chunked',
        against: 'openssl',
        target: 0.6,
        times: [one[0], ...one.slice(4)],
        bare: [2],
      },
      { name: '8 × 128 MiB', against: 'xargs', target: 1.1, times: eight, bare: [2] },
    ]);
    // Memory whatever the size: a 4 GiB sparse file (zeros, from the page cache) verified
    // by the whole command (it is in no statement: UNKNOWN, exit 2).
    const sparse = join(benchDir, 'sparse-4gib');
    closeSync(openSync(sparse, 'w'));
    truncateSync(sparse, 4 * GiB);
    const run = await vouch(['verify', 'file', '--state-dir', stateDir, sparse]);
    if (run.code !== 2) throw new Error(`vouch verify file exited with ${run.code}, not 2`);
    console.log(
      `\nvouch verify file, 4 GiB sparse file: ${run.seconds.toFixed(2)} s, peak RSS ${
        run.maxRssKiB === null ? 'n/a (no GNU time)' : `${(run.maxRssKiB / 1024).toFixed(0)} MiB`
      }`,
    );
  } finally {
    await Promise.all([planned, ...pools.values()].map((pool) => pool.close()));
  }
}

/** bare.cjs in a fresh process (start-up included, as for the command). */
function bare(mode: string, count: number, ...paths: string[]): Promise<unknown> {
  return exec(process.execPath, [bareScript, mode, String(count), ...paths]);
}

const bareScript = join(import.meta.dirname, 'bare.cjs');

/**
 * Each issue #6 whole-command target against this run: the command's time over the
 * baseline's, and the bare Node programs' — when every one of those is over the target too,
 * no Node command with these schemes meets it on this machine.
 */
function printTargets(
  rows: {
    name: string;
    against: string;
    target: number;
    /** Median seconds: the baseline, the command, then the cases `bare` points at. */
    times: readonly (number | undefined)[];
    bare: readonly number[];
  }[],
): void {
  console.log('\nIssue #6 targets (time ÷ baseline time, this run):');
  for (const { name, against, target, times, bare } of rows) {
    const ratio = (i: number) => (times[i] ?? Number.NaN) / (times[0] ?? Number.NaN);
    const bareRatios = bare.map(ratio);
    console.log(
      `  ${name.padEnd(20)} vouch ${ratio(1).toFixed(2)}×, bare Node ` +
        `${bareRatios.map((r) => `${r.toFixed(2)}×`).join(' / ')} ${against}'s time; ` +
        `target ≤ ${target.toFixed(1)}×` +
        (bareRatios.every((r) => r > target) ? ' — over it even without the CLI' : ''),
    );
  }
}
