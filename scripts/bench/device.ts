/**
 * Device state benchmarks (issue #5), run by scripts/bench.ts: the initial import of
 * 100,000 statements from a file:// mirror, an incremental sync of 1,000, index lookups
 * and index memory — each beside a native or plain-JS baseline measured in the same run.
 */

import { createHash, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, rm, stat } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pae, parseEnvelope } from '../../agent/core/dsse';
import { loadState } from '../../agent/device';
import { SubjectIndex } from '../../agent/device/store/subjects';
import { median, timed } from './harness';
import { benchLog, exec, vouch } from './world';

const statements = 100_000;
const increment = 1_000;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function line(name: string, value: string, ratio?: number): void {
  console.log(
    `  ${name.padEnd(52)} ${value.padStart(18)}${ratio === undefined ? '' : `   ×${ratio.toFixed(2)}`}`,
  );
}

/** Subject i: a realistic image name and a distinct digest. */
function subject(i: number) {
  return {
    name: `ghcr.io/home-assistant/aarch64-addon-${i % 500}:2025.${i % 12}.${i}`,
    sha256: createHash('sha256').update(`subject ${i}`).digest('hex'),
  };
}

export async function deviceBench(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'vouch-bench-device-'));
  try {
    console.log(
      `\nDevice state: sync, index (a log of ${statements.toLocaleString('en')} statements)`,
    );
    // The log: statements signed with node:crypto, appended and published by the ledger; a
    // copy of its tiles at 100k, then 1k more.
    const log = await benchLog(base);
    const subjects = Array.from({ length: statements + increment }, (_, i) => subject(i));
    await log.add(subjects.slice(0, statements));
    const mirror100k = join(base, 'mirror-100k');
    await cp(fileURLToPath(log.mirror), mirror100k, { recursive: true });
    await log.add(subjects.slice(statements));
    // The whole command, as a device runs it: `node dist/vouch.cjs sync`, start-up included.
    const sync = async (stateDir: string, mirror: string) => {
      const run = await vouch([
        'sync',
        ...['--state-dir', stateDir, '--root', log.rootPath, '--mirror', mirror],
        ...['--log-level', 'error'],
      ]);
      if (run.code !== 0) throw new Error(`vouch sync exited with ${run.code}`);
      return run;
    };

    // Baselines: the signature checks alone — OpenSSL's own on every core, and node:crypto
    // (the same OpenSSL) on one thread.
    const cores = availableParallelism();
    const { stdout } = await exec('openssl', [
      'speed',
      '-seconds',
      '2',
      '-multi',
      String(cores),
      'ed25519',
    ]);
    const opensslRate = Number(
      /Ed25519\)\s+\S+\s+\S+\s+\S+\s+([0-9.]+)/.exec(stdout)?.[1] ?? Number.NaN,
    );
    line(
      `Ed25519 verify only, openssl speed -multi ${cores} (baseline)`,
      `${opensslRate.toFixed(0)} stmt/s`,
      1,
    );
    const signerObject = log.signerKey.object;
    const parsed = log.envelopes.slice(0, statements).map((bytes) => parseEnvelope(bytes));
    const verifyAll = () => {
      for (const envelope of parsed) {
        verify(
          null,
          pae(envelope.payloadType, envelope.payload),
          signerObject,
          envelope.signatures[0]?.sig as Uint8Array,
        );
      }
    };
    const oneThread = statements / median([await timed(verifyAll), await timed(verifyAll)]);
    line(
      'Ed25519 verify only, node:crypto, 1 thread',
      `${oneThread.toFixed(0)} stmt/s`,
      oneThread / opensslRate,
    );

    let state100k = '';
    const imports: { seconds: number; maxRssKiB: number | null }[] = [];
    for (let run = 0; run < 3; run++) {
      const dir = await mkdtemp(join(base, 'import-'));
      imports.push(await sync(dir, pathToFileURL(mirror100k).href));
      if (state100k) await rm(dir, { recursive: true });
      else state100k = dir;
    }
    const importRate = statements / median(imports.map((run) => run.seconds));
    line(
      `initial import of ${statements.toLocaleString('en')} (vouch sync, file://)`,
      `${importRate.toFixed(0)} stmt/s`,
      importRate / opensslRate,
    );
    // Issue #5's target is a rate, not a ratio: what this machine allows varies by day.
    const target = 15_000;
    if (opensslRate < target) {
      console.log(
        `    target ${target.toLocaleString('en')} stmt/s: over what OpenSSL alone verifies ` +
          `on every core in this run (${opensslRate.toFixed(0)}/s), so no import can reach it here`,
      );
    }
    const peak = median(imports.map((run) => run.maxRssKiB ?? Number.NaN));
    line(
      '  its peak RSS',
      Number.isNaN(peak) ? 'n/a (no GNU time)' : `${(peak / 1024).toFixed(0)} MiB`,
    );

    // Incremental: fresh copies of the 100k state, each brought to 101k.
    const increments: number[] = [];
    for (let run = 0; run < 3; run++) {
      const dir = await mkdtemp(join(base, 'incremental-'));
      await cp(state100k, dir, { recursive: true });
      increments.push((await sync(dir, log.mirror)).seconds);
      await rm(dir, { recursive: true });
    }
    line(
      `incremental sync of ${increment.toLocaleString('en')} (vouch sync, file://)`,
      `${(median(increments) * 1000).toFixed(0)} ms`,
    );

    // Memory: the index as loaded against a Map of the same records. The V8 heap is
    // measured after a full GC, synchronously so that nothing else dies in between; the
    // index's one buffer is counted by its length (ArrayBuffer accounting lags behind GC).
    const heap = () => {
      gc();
      return process.memoryUsage().heapUsed;
    };
    const file = join(state100k, `index-${statements}.bin`);
    let before = heap();
    const loaded = SubjectIndex.decode(readFileSync(file));
    const indexBytes = (heap() - before + loaded.bytes.byteLength) / statements;
    before = heap();
    const records = new Map<string, unknown[]>();
    for (const { digest, record } of loaded.records()) records.set(digest, [record]);
    const mapBytes = (heap() - before) / statements;
    if (records.size !== loaded.rows) throw new Error('the index and the map differ');
    line('memory: Map<hex, record objects> (baseline)', `${mapBytes.toFixed(0)} B/stmt`, 1);
    line('memory: index, loaded', `${indexBytes.toFixed(0)} B/stmt`, indexBytes / mapBytes);
    line('index file size', `${((await stat(file)).size / statements).toFixed(0)} B/stmt`);

    // Lookups: the index against a Map of the same records, keyed by hex digest.
    const state = await loadState(state100k);
    if (!state) throw new Error('no state after import');
    const digests = Array.from({ length: statements }, (_, i) =>
      createHash('sha256')
        .update(`subject ${(i * 7919) % statements}`)
        .digest('hex'),
    );
    const map = new Map<string, unknown[]>();
    for (const { digest, record } of state.index.records()) map.set(digest, [record]);
    const lookMap = () => {
      for (const digest of digests) map.get(digest);
    };
    const lookIndex = () => {
      for (const digest of digests) state.index.lookup(digest, 'sha256');
    };
    lookMap();
    lookIndex();
    const mapNanos =
      (median([await timed(lookMap), await timed(lookMap), await timed(lookMap)]) / statements) *
      1e9;
    const indexNanos =
      (median([await timed(lookIndex), await timed(lookIndex), await timed(lookIndex)]) /
        statements) *
      1e9;
    line('lookup: Map<hex, record objects>.get (baseline)', `${mapNanos.toFixed(0)} ns`, 1);
    line(
      'lookup: index (binary search, records decoded)',
      `${indexNanos.toFixed(0)} ns`,
      indexNanos / mapNanos,
    );
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}
