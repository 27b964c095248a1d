/**
 * `npm run bench [-- GROUP...]`: speed measured side by side with a native baseline in the
 * same run, never asserted in tests (docs/architecture.md "Conventions"). Each suite prints medians of
 * repeated runs and the ratio against its baseline, under a line naming the machine.
 * Groups: hashing (issue #6), log (#4), device (#5), image (#7), agent (#15); all of them by
 * default.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { arch, cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { agentBench } from './bench/agent';
import { deviceBench } from './bench/device';
import { hashingBench } from './bench/hashing';
import { imageBench } from './bench/image';
import { logBench } from './bench/log';

const groups: Record<string, (benchDir: string) => Promise<void>> = {
  hashing: hashingBench,
  log: logBench,
  device: () => deviceBench(),
  image: () => imageBench(),
  agent: agentBench,
};

const chosen = process.argv.slice(2);
const unknown = chosen.filter((name) => !(name in groups));
if (unknown.length > 0) {
  console.error(
    `unknown bench group(s) ${unknown.join(', ')}; choose from ${Object.keys(groups).join(', ')}`,
  );
  process.exit(64);
}

console.log(
  `vouch bench — ${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, ${arch()}, ` +
    `${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
);
const benchDir = mkdtempSync(join(tmpdir(), 'vouch-bench-'));
try {
  for (const name of chosen.length > 0 ? chosen : Object.keys(groups)) {
    await groups[name]?.(benchDir);
  }
} finally {
  rmSync(benchDir, { recursive: true, force: true });
}
