/**
 * `npm run bench`: speed measured side by side with a native baseline in the same run,
 * never asserted in tests (CONVENTIONS.md §10). Each suite prints medians of repeated
 * runs and the ratio against its baseline, under a line naming the machine.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { arch, cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';
import { authorizeEnvelope } from '../agent/core/authorize';
import { serializeEnvelope, signEnvelope } from '../agent/core/dsse';
import { generateKey, namePublicKey } from '../agent/core/keys';
import { inclusionProofPlan } from '../agent/core/merkle';
import type { Root } from '../agent/core/root';
import { encodeStatement, statementPayloadType } from '../agent/core/statement';
import { tilePath, tilesForNodes } from '../agent/core/tiles';
import { HashPool } from '../agent/device/verify/pool';
import { appendEntries, initLog, proveInclusion, publishLog } from '../agent/ledger';
import { planHashing, readProfile } from '../hw';
import { deviceBench } from './bench/device';

interface Case {
  readonly name: string;
  /** Work units done by one run (bytes, signatures, …), for the rate column. */
  readonly units: number;
  readonly run: () => unknown; // may return a promise: it is awaited
}

interface Suite {
  readonly title: string;
  readonly unit: string;
  /** The first case is the baseline the others are compared against. */
  readonly cases: readonly Case[];
  readonly repeats: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function measure(entry: Case, repeats: number): Promise<number> {
  await entry.run(); // warm-up: JIT and page cache
  const seconds: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = process.hrtime.bigint();
    await entry.run();
    seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  return median(seconds);
}

function formatRate(perSecond: number, unit: string): string {
  if (unit === 'B') return `${(perSecond / 2 ** 20).toFixed(0).padStart(8)} MiB/s`;
  return `${perSecond.toFixed(0).padStart(8)} ${unit}/s`;
}

async function runSuite(suite: Suite): Promise<void> {
  console.log(`\n${suite.title} (median of ${suite.repeats})`);
  let baseline = 0;
  for (const entry of suite.cases) {
    const rate = entry.units / (await measure(entry, suite.repeats));
    baseline ||= rate;
    const ratio = (rate / baseline).toFixed(2);
    console.log(`  ${entry.name.padEnd(40)} ${formatRate(rate, suite.unit)}   ×${ratio}`);
  }
}

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
const exec = promisify(execFile);
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const benchDir = mkdtempSync(join(tmpdir(), 'vouch-bench-'));
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
const cores = cpus().length;
const counts = [...new Set([1, 2, 4, 8, 16, 32].filter((n) => n < cores).concat(cores))];
const pools = new Map(
  counts.map((n) => [n, new HashPool({ workers: n, chunkSize: MiB, inFlightBytes: 4 * n * MiB })]),
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
      { name: 'pool.hash (one worker streams it)', units: GiB, run: () => planned.hash(oneGiB) },
      {
        name: `pool.hashChunked, ${cores} workers`,
        units: GiB,
        run: () => (pools.get(cores) as HashPool).hashChunked(oneGiB),
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

// The transparency log: 100k statements appended and published, and inclusion proofs from
// the published tiles, against node:crypto doing only the RFC 6962 leaf hashing.
const logEntries = 100_000;
const authorized = 10_000;
const origin = 'bench.example/log';
const logKey = generateKey().key;
const notary = generateKey().key;
const benchRoot: Root = {
  version: 1,
  expires: '2099-01-01T00:00:00Z',
  rootKeys: [namePublicKey('root', generateKey().key.raw)],
  threshold: 1,
  log: { origin, key: namePublicKey(origin, logKey.raw) },
  witnesses: [],
  witnessQuorum: 0,
  signers: [{ id: 'notary', keys: [namePublicKey('notary', notary.raw)], scopes: ['**'] }],
};
const envelopes = Array.from({ length: authorized }, (_, i) => {
  const payload = encodeStatement({
    subjects: [
      {
        name: `ghcr.io/home-assistant/app-${i}`,
        sha256: createHash('sha256').update(`${i}`).digest('hex'),
      },
    ],
    status: 'trusted',
    signer: 'notary',
    issuedAt: new Date('2025-06-01T00:00:00Z'),
  });
  return Buffer.from(serializeEnvelope(signEnvelope(statementPayloadType, payload, notary)));
});
// 100k distinct entries of a real envelope's size (appending does not parse them).
const entryTemplate = envelopes[0] as Buffer;
const leaves = Array.from({ length: logEntries }, (_, i) => {
  const entry = Buffer.from(entryTemplate);
  entry.write(i.toString().padStart(8, '0'), entry.length - 10);
  return entry;
});
let published = '';
async function appendAndPublish(): Promise<void> {
  const dir = join(mkdtempSync(join(benchDir, 'log-')), 'log');
  await initLog(dir, origin, 'unused', logKey);
  await appendEntries(dir, leaves);
  await publishLog(dir, logKey);
  published = dir;
}
const proofIndexes = Array.from({ length: 200 }, (_, i) => (i * 7919) % logEntries);
suites.push(
  {
    title: `Transparency log: ${logEntries.toLocaleString('en')} entries of ${entryTemplate.length} bytes`,
    unit: 'entries',
    repeats: 2,
    cases: [
      {
        name: 'node:crypto leaf hashes (baseline)',
        units: logEntries,
        run: () => {
          for (const leaf of leaves)
            createHash('sha256')
              .update(Buffer.from([0]))
              .update(leaf)
              .digest();
        },
      },
      {
        name: 'append + publish',
        units: logEntries,
        run: appendAndPublish,
      },
      {
        name: 'authorizeEnvelope (the log add check)',
        units: authorized,
        run: () => {
          const now = new Date();
          for (const envelope of envelopes) authorizeEnvelope(benchRoot, envelope, now);
        },
      },
    ],
  },
  {
    title: `Inclusion proofs from the tiles of ${logEntries.toLocaleString('en')} entries`,
    unit: 'proofs',
    repeats: 3,
    cases: [
      {
        name: 'read the tiles of a proof (baseline)',
        units: proofIndexes.length,
        run: async () => {
          for (const index of proofIndexes) {
            const tiles = tilesForNodes(inclusionProofPlan(index, logEntries).flat(), logEntries);
            for (const tile of tiles) await readFile(join(published, 'public', tilePath(tile)));
          }
        },
      },
      {
        name: 'proveInclusion (as vouch log proof)',
        units: proofIndexes.length,
        run: async () => {
          for (const index of proofIndexes) await proveInclusion(published, index);
        },
      },
    ],
  },
);

console.log(
  `vouch bench — ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${arch()}, ` +
    `${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
);
try {
  for (const suite of suites) await runSuite(suite);
  await deviceBench();
} finally {
  await Promise.all([planned, ...pools.values()].map((pool) => pool.close()));
  rmSync(benchDir, { recursive: true, force: true });
}
