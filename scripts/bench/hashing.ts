/**
 * SHA-256 on the data path: node:crypto against pure JS in memory, and files from the page
 * cache through the worker pool and the whole `vouch verify file` command (the built bundle,
 * start-up included, against a synced state) against openssl in the same run (issue #6).
 */

import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, openSync, truncateSync, writeSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { merkleLeafSize } from '../../agent/core/statement';
import { type Digest, HashPool } from '../../agent/device/verify/pool';
import { planHashing, readProfile } from '../../hw';
import { medianOf, runSuite, type Suite, timed } from './harness';
import { benchLog, build, cliPath, exec, syncedState, vouch } from './world';

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
  const block = randomBytes(16 * MiB);
  function writeData(name: string, bytes: number): string {
    const path = join(benchDir, name);
    const fd = openSync(path, 'w');
    for (let at = 0; at < bytes; at += block.length) writeSync(fd, block, 0, block.length);
    closeSync(fd);
    return path;
  }
  const oneGiB = writeData('one-gib', GiB);
  const parts = Array.from({ length: 8 }, (_, i) => writeData(`part-${i}`, 128 * MiB));
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
      repeats: 3,
      cases: [
        {
          name: 'openssl dgst -sha256 (baseline)',
          units: GiB,
          run: () => exec('openssl', ['dgst', '-sha256', oneGiB]),
        },
        { name: 'vouch verify file (whole command)', units: GiB, run: () => verifyFiles([oneGiB]) },
        {
          name: 'vouch verify file --chunked (command)',
          units: GiB,
          run: () => verifyFiles([oneGiB], '--chunked'),
        },
        { name: 'pool.hash (one worker streams it)', units: GiB, run: () => planned.hash(oneGiB) },
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
      repeats: 3,
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
    await printFloors({
      hashSecondsPerByte: (medians[0]?.[0] as number) / data.length,
      openssl: medians[1]?.[0] as number,
      xargs: medians[2]?.[0] as number,
      cores,
    });
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

/**
 * A lower bound for each issue #6 whole-command target on this machine: the time no
 * `vouch verify file` could beat. Node's own start-up (`node -e 0`), then one hash worker's
 * boot (hashing runs on workers, which the started process creates; timed in a fresh
 * process), then the SHA-256 work alone, of bytes already in memory: for one plain digest
 * on one core (it is sequential), for the chunked digest and the 8 files on every core at
 * once (measured so, with a worker per core). Reading the files is left out, so the true
 * floor is higher.
 */
async function printFloors(run: {
  hashSecondsPerByte: number;
  openssl: number;
  xargs: number;
  cores: number;
}): Promise<void> {
  const GiB = 2 ** 30;
  await build();
  const nodeStart = await medianOf(5, () => timed(() => exec(process.execPath, ['-e', '0'])));
  // In a fresh process, as the command boots it (a busy process boots workers slower).
  const bootScript = `const { Worker } = require('node:worker_threads');
    const start = performance.now();
    new Worker(${JSON.stringify(join(dirname(cliPath), 'hash.worker.cjs'))})
      .once('message', function () { console.log(performance.now() - start); this.terminate(); });`;
  const workerBoot = await medianOf(
    5,
    async () => Number((await exec(process.execPath, ['-e', bootScript])).stdout) / 1000,
  );
  const allCores = await medianOf(5, () => hashOnEveryCore(GiB, run.cores));
  const start = nodeStart + workerBoot;
  const floors = [
    ['1 GiB, plain digest', start + GiB * run.hashSecondsPerByte, run.openssl, 'openssl', 1.0],
    ['1 GiB, chunked', start + allCores, run.openssl, 'openssl', 0.6],
    ['8 × 128 MiB', start + allCores, run.xargs, 'xargs', 1.1],
  ] as const;
  console.log(
    `\nFloor of a whole command here: node -e 0 ${nodeStart.toFixed(3)} s + hash worker boot ` +
      `${workerBoot.toFixed(3)} s + SHA-256 of 1 GiB in memory (one core ` +
      `${(GiB * run.hashSecondsPerByte).toFixed(3)} s, ${run.cores} cores at once ${allCores.toFixed(3)} s)`,
  );
  for (const [name, floor, baseline, against, target] of floors) {
    const ratio = floor / baseline;
    console.log(
      `  ${name.padEnd(22)} floor ${floor.toFixed(2)} s = ${ratio.toFixed(2)}× ${against}'s ` +
        `time; target ≤ ${target.toFixed(1)}×${ratio > target ? ', under the floor: unreachable here' : ''}`,
    );
  }
}

/** Seconds for `cores` worker threads to hash `bytes` in memory between them, at once. */
async function hashOnEveryCore(bytes: number, cores: number): Promise<number> {
  const share = Math.ceil(bytes / cores);
  // Each hashes its share as updates of one 64 MiB buffer: no more memory than that each.
  const code = `const { parentPort, workerData: share } = require('node:worker_threads');
    const data = Buffer.alloc(Math.min(share, 64 * 2 ** 20), 0xa5);
    parentPort.on('message', () => {
      const hash = require('node:crypto').createHash('sha256');
      for (let left = share; left > 0; left -= data.length) {
        hash.update(left < data.length ? data.subarray(0, left) : data);
      }
      hash.digest();
      parentPort.postMessage('hashed');
    });
    parentPort.postMessage('ready');`;
  const workers = Array.from(
    { length: cores },
    () => new Worker(code, { eval: true, workerData: share }),
  );
  try {
    await Promise.all(workers.map((worker) => once(worker, 'message')));
    return await timed(() =>
      Promise.all(
        workers.map((worker) => {
          worker.postMessage('go');
          return once(worker, 'message');
        }),
      ),
    );
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}
