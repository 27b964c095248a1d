/**
 * The benchmark harness: figures (each with its baseline, ratio and target), medians of
 * interleaved runs, and the one table and JSON file (bench/results.json) every group's
 * figures go to.
 */

/**
 * `VOUCH_BENCH_QUICK=1` or `--quick`: every size and run count shrunk, for checking that the
 * bench works (its figures mean little). The runs are the full ones.
 */
export const quick = process.env.VOUCH_BENCH_QUICK === '1' || process.argv.includes('--quick');

/** `full` normally, `small` in quick mode. */
export function scaled<T>(full: T, small: T): T {
  return quick ? small : full;
}

/** Rounds of interleaved runs: at least 5 (issue 18), 2 in quick mode. */
export function rounds(full = 5): number {
  return quick ? 2 : Math.max(5, full);
}

/**
 * How a value is printed: seconds, bytes, bytes per second, or a count of something per
 * second or per item ("stmt/s", "req/s", "B/stmt").
 */
export type Unit = 's' | 'B' | 'B/s' | string;

/** A bound a target sets, on the ratio to the baseline or on the value itself. */
export interface Target {
  readonly on: 'ratio' | 'value';
  readonly op: '≤' | '≥';
  readonly bound: number;
  /** Where the target comes from ("issue 18"), or why it is missed, for the footnotes. */
  readonly note?: string;
}

/** One measured figure, as the groups return them. */
export interface Figure {
  readonly group: string;
  readonly name: string;
  readonly value: number;
  readonly unit: Unit;
  /** The figure this one is compared with, measured in the same run (same unit). */
  readonly baseline?: { readonly name: string; readonly value: number };
  readonly target?: Target;
  /** Each run's value, where the value is a median of them. */
  readonly runs?: readonly number[];
  /** A footnote: what the figure does or does not include. */
  readonly note?: string;
}

/** A figure as results.json records it: the ratio and whether its target is met, computed. */
export interface Result extends Figure {
  readonly ratio?: number;
  readonly met?: boolean;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Seconds `run` takes (awaited when it returns a promise). */
async function timed(run: () => unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

export interface Case {
  readonly name: string;
  /** Work units one run does (bytes, statements, …): the figure is a rate; else a time. */
  readonly units?: number;
  /** Runs before each timed run, untimed. */
  readonly prepare?: () => unknown;
  readonly run: () => unknown; // may return a promise: it is awaited
  readonly target?: Target;
  readonly note?: string;
}

/**
 * Seconds per run of each case, in rounds of one run each after a warm-up round (JIT, page
 * cache), so that a machine that gets busier or quieter meanwhile weighs on every case alike.
 */
export async function interleaved(
  count: number,
  cases: readonly Pick<Case, 'prepare' | 'run'>[],
): Promise<number[][]> {
  const samples = cases.map(() => [] as number[]);
  for (let round = -1; round < count; round++) {
    for (const [i, entry] of cases.entries()) {
      await entry.prepare?.();
      const time = await timed(entry.run);
      if (round >= 0) samples[i]?.push(time);
    }
  }
  return samples;
}

/**
 * Runs the cases interleaved; the first is the baseline of the others. A case with `units`
 * gives a rate (`unit` per second), one without a time.
 */
export async function runSuite(
  group: string,
  suite: { readonly unit?: string; readonly cases: readonly Case[]; readonly rounds?: number },
): Promise<Figure[]> {
  const samples = await interleaved(suite.rounds ?? rounds(), suite.cases);
  const values = suite.cases.map((entry, i) => {
    const runs = (samples[i] ?? []).map((s) => (entry.units === undefined ? s : entry.units / s));
    return { runs, value: median(runs) };
  });
  const base = { name: suite.cases[0]?.name ?? '', value: values[0]?.value ?? Number.NaN };
  return suite.cases.map((entry, i) => ({
    group,
    name: entry.name,
    unit: entry.units === undefined ? 's' : (suite.unit ?? '/s'),
    ...(values[i] as { runs: number[]; value: number }),
    ...(i > 0 ? { baseline: base } : {}),
    ...(entry.target ? { target: entry.target } : {}),
    ...(entry.note ? { note: entry.note } : {}),
  }));
}

/** The ratio to the baseline, and whether the target is met. */
export function evaluate(figure: Figure): Result {
  const ratio = figure.baseline ? figure.value / figure.baseline.value : undefined;
  const { target } = figure;
  if (!target) return { ...figure, ...(ratio === undefined ? {} : { ratio }) };
  const measured = target.on === 'ratio' ? (ratio ?? Number.NaN) : figure.value;
  // Not measured here (no GNU time, say): neither met nor missed.
  if (!Number.isFinite(measured)) return { ...figure, ...(ratio === undefined ? {} : { ratio }) };
  const met = target.op === '≤' ? measured <= target.bound : measured >= target.bound;
  return { ...figure, ...(ratio === undefined ? {} : { ratio }), met };
}

const MiB = 2 ** 20;
const group3 = (n: number) => Math.round(n).toLocaleString('en');

/** A value in its unit, for people: 0.128 s → "128 ms", 2^30 B/s → "1,024 MiB/s". */
export function formatValue(value: number, unit: Unit): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (unit === 's') {
    if (value >= 10) return `${value.toFixed(1)} s`;
    if (value >= 1) return `${value.toFixed(2)} s`;
    if (value >= 0.01) return `${(value * 1e3).toFixed(0)} ms`;
    if (value >= 1e-4) return `${(value * 1e3).toFixed(2)} ms`;
    return `${(value * 1e6).toFixed(value >= 1e-5 ? 1 : 3)} µs`;
  }
  if (unit === 'B') return `${(value / MiB).toFixed(1)} MiB`;
  if (unit === 'B/s') return `${group3(value / MiB)} MiB/s`;
  return `${group3(value)} ${unit}`;
}

function formatTarget(target: Target, unit: Unit): string {
  return target.on === 'ratio'
    ? `${target.op} ${target.bound}×`
    : `${target.op} ${formatValue(target.bound, unit)}`;
}

/**
 * The one table: a row per figure, groups apart, and numbered footnotes; as text for the
 * terminal or as Markdown (docs/performance.md).
 */
export function formatTable(results: readonly Result[], markdown = false): string {
  const notes: string[] = [];
  const footnote = (text: string) => {
    let index = notes.indexOf(text);
    if (index < 0) index = notes.push(text) - 1;
    return `[${index + 1}]`;
  };
  const header = ['group', 'what', 'measured', 'baseline', 'ratio', 'target'];
  const rows = results.map((r) => {
    const marks = [r.note, r.target?.note].filter((n): n is string => !!n).map(footnote);
    return [
      r.group,
      [r.name, ...marks].join(' '),
      formatValue(r.value, r.unit),
      r.baseline ? formatValue(r.baseline.value, r.unit) : '',
      r.ratio === undefined ? '' : `${r.ratio.toFixed(2)}×`,
      r.target
        ? `${formatTarget(r.target, r.unit)}: ${r.met === undefined ? 'not measured' : r.met ? 'met' : 'MISSED'}`
        : '',
    ];
  });
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)),
  );
  const right = new Set([2, 3, 4]);
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) =>
        right.has(i) ? cell.padStart(widths[i] ?? 0) : cell.padEnd(widths[i] ?? 0),
      )
      .join('  ')
      .trimEnd();
  if (markdown) {
    const cells = (row: readonly string[]) =>
      `| ${row.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`;
    const rule = `|${header.map((_, i) => (right.has(i) ? ' ---: ' : ' --- ')).join('|')}|`;
    return [
      cells(header),
      rule,
      ...rows.map(cells),
      '',
      ...notes.map((note, i) => `${i + 1}. ${note}`),
    ]
      .join('\n')
      .trimEnd();
  }
  const out = [line(header), line(widths.map((w) => '-'.repeat(w)))];
  let group = '';
  for (const row of rows) {
    if (row[0] !== group && group !== '') out.push('');
    group = row[0] ?? '';
    out.push(line(row));
  }
  if (notes.length > 0) out.push('', ...notes.map((note, i) => `[${i + 1}] ${note}`));
  return out.join('\n');
}

export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly arch: string;
  readonly memoryBytes: number;
  readonly node: string;
}

/** What bench/results.json holds: the machine, and each group's figures with its run's date. */
export interface Results {
  readonly machine: Machine;
  readonly groups: Record<string, { readonly date: string; readonly figures: readonly Result[] }>;
}

/**
 * Adds a run's groups to earlier results of the same machine and Node (a group run alone
 * replaces its own figures only); results of another machine are dropped.
 */
export function mergeResults(
  earlier: Results | undefined,
  machine: Machine,
  date: string,
  figures: readonly Figure[],
): Results {
  const same = earlier && JSON.stringify(earlier.machine) === JSON.stringify(machine);
  const groups = { ...(same ? earlier.groups : {}) };
  for (const name of new Set(figures.map((f) => f.group))) {
    groups[name] = {
      date,
      figures: figures.filter((f) => f.group === name).map(evaluate),
    };
  }
  return { machine, groups };
}
