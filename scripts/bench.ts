/**
 * `npm run bench`: speed measured side by side with a native baseline in the same run,
 * never asserted in tests (CONVENTIONS.md §10). Each suite prints medians of repeated
 * runs and the ratio against its baseline, under a line naming the machine.
 */
import { createHash } from 'node:crypto';
import { arch, cpus, totalmem } from 'node:os';
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

interface Case {
  readonly name: string;
  /** Work units done by one run (bytes, signatures, …), for the rate column. */
  readonly units: number;
  readonly run: () => unknown;
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

function measure(entry: Case, repeats: number): number {
  entry.run(); // warm-up: JIT and page cache
  const seconds: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const start = process.hrtime.bigint();
    entry.run();
    seconds.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  return median(seconds);
}

function formatRate(perSecond: number, unit: string): string {
  if (unit === 'B') return `${(perSecond / 2 ** 20).toFixed(0).padStart(8)} MiB/s`;
  return `${perSecond.toFixed(0).padStart(8)} ${unit}/s`;
}

function runSuite(suite: Suite): void {
  console.log(`\n${suite.title} (median of ${suite.repeats})`);
  let baseline = 0;
  for (const entry of suite.cases) {
    const rate = entry.units / measure(entry, suite.repeats);
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

console.log(
  `vouch bench — ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${arch()}, ` +
    `${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
);
for (const suite of suites) runSuite(suite);
