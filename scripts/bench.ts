/**
 * `npm run bench [-- [--quick] GROUP...]`: speed measured side by side with a baseline in the
 * same run, never asserted in tests (docs/architecture.md "Conventions"). Every group returns
 * its figures; this prints them as one table and writes them to bench/results.json
 * (docs/performance.md explains each).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { arch, cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { agentBench } from './bench/agent';
import { deviceBench } from './bench/device';
import {
  evaluate,
  type Figure,
  formatTable,
  type Machine,
  mergeResults,
  quick,
  type Results,
} from './bench/harness';
import { hashingBench } from './bench/hashing';
import { imageBench } from './bench/image';
import { loadBench } from './bench/load';
import { logBench } from './bench/log';
import { startBench } from './bench/start';
import { trustBench } from './bench/trust';

const groups: Record<string, { about: string; run: (benchDir: string) => Promise<Figure[]> }> = {
  hashing: {
    about: 'SHA-256, files through the hash pool and `vouch verify file`',
    run: hashingBench,
  },
  log: { about: 'the transparency log: append, publish, inclusion proofs', run: logBench },
  device: {
    about: 'the device state: import throughput vs openssl speed, index',
    run: deviceBench,
  },
  trust: {
    about: 'trust data at scale: vouch sync vs tuf-js over http://127.0.0.1',
    run: trustBench,
  },
  start: { about: 'cold start: `vouch verify digest` vs `node -e 0`', run: startBench },
  agent: { about: 'the agent: API verify, revocation latency, idle RSS', run: agentBench },
  load: { about: 'the agent API under load (autocannon, 1,000 in flight)', run: loadBench },
  image: { about: '`vouch verify image --deep` vs `docker save` (needs dockerd)', run: imageBench },
};

const resultsPath = join(import.meta.dirname, '..', 'bench', 'results.json');
const args = process.argv.slice(2).filter((arg) => arg !== '--quick');
if (args.includes('--help') || args.includes('-h')) {
  console.log(
    [
      'npm run bench [-- [--quick] GROUP...]   all groups by default, in this order:',
      ...Object.entries(groups).map(([name, { about }]) => `  ${name.padEnd(8)} ${about}`),
      '',
      `Prints one table and adds the groups' figures to ${resultsPath}`,
      '(figures of groups not run stay, unless the machine or Node differs).',
      '--quick (or VOUCH_BENCH_QUICK=1): small sizes and 2 rounds, to check that the bench',
      'works; it writes to the temp dir instead (trust: 1k, 2k and 5k statements, tuf-js at 1k and 2k).',
      `--markdown: print ${resultsPath} as a Markdown table (runs nothing).`,
    ].join('\n'),
  );
  process.exit(0);
}
if (args.includes('--markdown')) {
  // The table of bench/results.json for docs/performance.md; nothing is run.
  const results = JSON.parse(readFileSync(resultsPath, 'utf8')) as Results;
  for (const [name, { date }] of Object.entries(results.groups)) {
    console.log(`- ${name}: ${date}`);
  }
  console.log(
    `\n${formatTable(
      Object.values(results.groups).flatMap(({ figures }) => figures),
      true,
    )}`,
  );
  process.exit(0);
}
const unknown = args.filter((name) => !(name in groups));
if (unknown.length > 0) {
  console.error(
    `unknown bench group(s) ${unknown.join(', ')}; choose from ${Object.keys(groups).join(', ')}`,
  );
  process.exit(64);
}

const machine: Machine = {
  cpu: cpus()[0]?.model ?? 'unknown CPU',
  cores: cpus().length,
  arch: arch(),
  memoryBytes: totalmem(),
  node: process.version,
};
const date = new Date().toISOString();
console.error(
  `vouch bench${quick ? ' (quick)' : ''} — ${machine.cpu}, ${machine.cores} cores, ${machine.arch}, ` +
    `${(machine.memoryBytes / 2 ** 30).toFixed(0)} GiB, Node ${machine.node}, ${date}`,
);
const figures: Figure[] = [];
const benchDir = mkdtempSync(join(tmpdir(), 'vouch-bench-'));
try {
  for (const name of args.length > 0 ? args : Object.keys(groups)) {
    console.error(`\n${name}: ${groups[name]?.about}…`);
    figures.push(...((await groups[name]?.run(benchDir)) ?? []));
  }
} finally {
  rmSync(benchDir, { recursive: true, force: true });
  // What was measured is kept even when a later group fails.
  const out = quick ? join(tmpdir(), 'vouch-bench-quick.json') : resultsPath;
  const earlier = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as Results) : undefined;
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(mergeResults(earlier, machine, date, figures), null, 2)}\n`);
  console.log(
    `\nvouch bench${quick ? ' (QUICK: small sizes, 2 rounds)' : ''}, ${date}: ${machine.cpu}, ` +
      `${machine.cores} cores, ${machine.arch}, ${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, ` +
      `Node ${machine.node}; medians of interleaved runs; ratio = measured ÷ baseline\n`,
  );
  console.log(formatTable(figures.map(evaluate)));
  console.log(`\nwritten to ${out}`);
}
