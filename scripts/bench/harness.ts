/** The benchmark harness: suites of cases, medians of repeated runs, ratios to a baseline. */

export interface Case {
  readonly name: string;
  /** Work units done by one run (bytes, signatures, …), for the rate column. */
  readonly units: number;
  readonly run: () => unknown; // may return a promise: it is awaited
}

export interface Suite {
  readonly title: string;
  readonly unit: string;
  /** The first case is the baseline the others are compared against. */
  readonly cases: readonly Case[];
  readonly repeats: number;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Seconds `run` takes (awaited when it returns a promise). */
export async function timed(run: () => unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function formatRate(perSecond: number, unit: string): string {
  if (unit === 'B') return `${(perSecond / 2 ** 20).toFixed(0).padStart(8)} MiB/s`;
  return `${perSecond.toFixed(0).padStart(8)} ${unit}/s`;
}

/**
 * Prints the suite; returns each case's median seconds per run, in order. Runs are
 * interleaved (one of each case per round, after a warm-up round for JIT and page cache), so
 * that a machine that gets busier or quieter meanwhile weighs on every case alike.
 */
export async function runSuite(suite: Suite): Promise<number[]> {
  console.log(`\n${suite.title} (median of ${suite.repeats}, interleaved)`);
  for (const entry of suite.cases) await entry.run();
  const samples: number[][] = suite.cases.map(() => []);
  for (let round = 0; round < suite.repeats; round++) {
    for (const [i, entry] of suite.cases.entries()) samples[i]?.push(await timed(entry.run));
  }
  const medians = samples.map(median);
  const baseline = (suite.cases[0]?.units ?? 0) / (medians[0] ?? 1);
  for (const [i, entry] of suite.cases.entries()) {
    const rate = entry.units / (medians[i] as number);
    const ratio = (rate / baseline).toFixed(2);
    console.log(`  ${entry.name.padEnd(44)} ${formatRate(rate, suite.unit)}   ×${ratio}`);
  }
  return medians;
}
