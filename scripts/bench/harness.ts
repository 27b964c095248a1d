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

/** The median of `repeats` samples, taken one after another. */
export async function medianOf(repeats: number, sample: () => Promise<number>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < repeats; i++) samples.push(await sample());
  return median(samples);
}

async function measure(entry: Case, repeats: number): Promise<number> {
  await entry.run(); // warm-up: JIT and page cache
  return medianOf(repeats, () => timed(entry.run));
}

function formatRate(perSecond: number, unit: string): string {
  if (unit === 'B') return `${(perSecond / 2 ** 20).toFixed(0).padStart(8)} MiB/s`;
  return `${perSecond.toFixed(0).padStart(8)} ${unit}/s`;
}

/** Prints the suite; returns each case's median seconds per run, in order. */
export async function runSuite(suite: Suite): Promise<number[]> {
  console.log(`\n${suite.title} (median of ${suite.repeats})`);
  let baseline = 0;
  const medians: number[] = [];
  for (const entry of suite.cases) {
    const seconds = await measure(entry, suite.repeats);
    medians.push(seconds);
    const rate = entry.units / seconds;
    baseline ||= rate;
    const ratio = (rate / baseline).toFixed(2);
    console.log(`  ${entry.name.padEnd(40)} ${formatRate(rate, suite.unit)}   ×${ratio}`);
  }
  return medians;
}
