/**
 * Device state benchmarks (issues 5 and 18), run by scripts/bench.ts: the initial import of
 * 100,000 statements from a file:// mirror against `openssl speed -multi N ed25519` round by
 * round, an incremental sync of 1,000, index lookups and index memory — each beside a native
 * or plain-JS baseline measured in the same run.
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
import { type Figure, median, rounds, runSuite, scaled } from './harness';
import { benchLog, exec, vouch } from './world';

const statements = scaled(100_000, 5_000);
const increment = scaled(1_000, 200);
const group = 'device';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Subject i: a realistic image name and a distinct digest. */
export function subject(i: number) {
  return {
    name: `ghcr.io/home-assistant/aarch64-addon-${i % 500}:2025.${i % 12}.${i}`,
    sha256: createHash('sha256').update(`subject ${i}`).digest('hex'),
  };
}

/** Ed25519 verifications per second by OpenSSL alone on every core (`openssl speed -multi`). */
async function opensslEd25519Rate(): Promise<number> {
  const { stdout } = await exec('openssl', [
    ...['speed', '-seconds', String(scaled(2, 1)), '-multi', String(availableParallelism())],
    'ed25519',
  ]);
  const rate = Number(/Ed25519\)\s+\S+\s+\S+\s+\S+\s+([0-9.]+)/.exec(stdout)?.[1]);
  if (!Number.isFinite(rate)) throw new Error(`no Ed25519 verify rate in ${stdout}`);
  return rate;
}

export async function deviceBench(): Promise<Figure[]> {
  const base = await mkdtemp(join(tmpdir(), 'vouch-bench-device-'));
  const count = statements.toLocaleString('en');
  try {
    // The log: statements signed with node:crypto, appended and published by the ledger; a
    // copy of its tiles at 100k, then 1k more.
    const log = await benchLog(base);
    const subjects = Array.from({ length: statements + increment }, (_, i) => subject(i));
    await log.add(subjects.slice(0, statements));
    const mirrorFull = join(base, 'mirror-full');
    await cp(fileURLToPath(log.mirror), mirrorFull, { recursive: true });
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

    // The import against OpenSSL's own signature checks on every core, round by round.
    let stateFull = '';
    const openssl: number[] = [];
    const imports: { seconds: number; maxRssKiB: number | null }[] = [];
    for (let round = -1; round < rounds(); round++) {
      const rate = await opensslEd25519Rate();
      const dir = await mkdtemp(join(base, 'import-'));
      const run = await sync(dir, pathToFileURL(mirrorFull).href);
      if (round >= 0) {
        openssl.push(rate);
        imports.push(run);
      }
      if (stateFull) await rm(dir, { recursive: true });
      else stateFull = dir;
    }
    const opensslName = `Ed25519 verify only: openssl speed -multi ${availableParallelism()} ed25519`;
    const baseline = { name: opensslName, value: median(openssl) };
    const figures: Figure[] = [
      { group, name: opensslName, value: baseline.value, unit: 'stmt/s', runs: openssl },
      {
        group,
        name: `initial import of ${count} (vouch sync, file:// mirror)`,
        ...medianOf(imports.map((run) => statements / run.seconds)),
        unit: 'stmt/s',
        baseline,
        target: { on: 'ratio', op: '≥', bound: 0.8, note: 'issue 18 (issue 5: 15,000 stmt/s)' },
        note: "the whole command, start-up included; every statement's Ed25519 signature checked",
      },
      {
        group,
        name: '  its peak RSS',
        value: median(imports.map((run) => (run.maxRssKiB ?? Number.NaN) * 1024)),
        unit: 'B',
      },
    ];

    // One thread of node:crypto, the same OpenSSL, on the same signatures.
    const signerObject = log.signerKey.object;
    const parsed = log.envelopes.slice(0, statements).map((bytes) => parseEnvelope(bytes));
    figures.push(
      ...(
        await runSuite(group, {
          unit: 'stmt/s',
          cases: [
            {
              name: 'Ed25519 verify only, node:crypto, 1 thread',
              units: statements,
              run: () => {
                for (const envelope of parsed) {
                  verify(
                    null,
                    pae(envelope.payloadType, envelope.payload),
                    signerObject,
                    envelope.signatures[0]?.sig as Uint8Array,
                  );
                }
              },
            },
          ],
        })
      ).map((figure) => ({ ...figure, baseline })),
    );

    // Incremental: fresh copies of the full state, each brought up by `increment`.
    const increments: number[] = [];
    for (let run = 0; run < rounds(); run++) {
      const dir = await mkdtemp(join(base, 'incremental-'));
      await cp(stateFull, dir, { recursive: true });
      increments.push((await sync(dir, log.mirror)).seconds);
      await rm(dir, { recursive: true });
    }
    figures.push({
      group,
      name: `incremental sync of ${increment.toLocaleString('en')} on ${count} (vouch sync)`,
      ...medianOf(increments),
      unit: 's',
      target: { on: 'value', op: '≤', bound: 1, note: 'issue 5' },
    });

    // Memory: the index as loaded against a Map of the same records. The V8 heap is
    // measured after a full GC, synchronously so that nothing else dies in between; the
    // index's one buffer is counted by its length (ArrayBuffer accounting lags behind GC).
    const heap = () => {
      gc();
      return process.memoryUsage().heapUsed;
    };
    const file = join(stateFull, `index-${statements}.bin`);
    let before = heap();
    const loaded = SubjectIndex.decode(readFileSync(file));
    const indexBytes = (heap() - before + loaded.bytes.byteLength) / statements;
    before = heap();
    const records = new Map<string, unknown[]>();
    for (const { digest, record } of loaded.records()) records.set(digest, [record]);
    const mapBytes = (heap() - before) / statements;
    if (records.size !== loaded.rows) throw new Error('the index and the map differ');
    const mapName = 'memory: Map<hex, record objects>';
    figures.push(
      { group, name: mapName, value: mapBytes, unit: 'B/stmt' },
      {
        group,
        name: 'memory: the index, loaded',
        value: indexBytes,
        unit: 'B/stmt',
        baseline: { name: mapName, value: mapBytes },
      },
      {
        group,
        name: 'index file size',
        value: (await stat(file)).size / statements,
        unit: 'B/stmt',
      },
    );

    // Lookups: the index against a Map of the same records, keyed by hex digest.
    const state = await loadState(stateFull);
    if (!state) throw new Error('no state after import');
    const digests = Array.from({ length: statements }, (_, i) =>
      createHash('sha256')
        .update(`subject ${(i * 7919) % statements}`)
        .digest('hex'),
    );
    // Each lookup's answer is used (counted and checked), so that V8 cannot drop the call.
    const lookEach = (records: (digest: string) => number) => () => {
      let found = 0;
      for (const digest of digests) found += records(digest);
      if (found !== digests.length)
        throw new Error(`${found} records for ${digests.length} digests`);
    };
    const map = new Map<string, unknown[]>();
    for (const { digest, record } of state.index.records()) map.set(digest, [record]);
    const lookups = await runSuite(group, {
      cases: [
        {
          name: `lookup: Map<hex, record objects>.get × ${count}`,
          run: lookEach((digest) => map.get(digest)?.length ?? 0),
        },
        {
          name: `lookup: the index (binary search, records decoded) × ${count}`,
          run: lookEach((digest) => state.index.lookup(digest, 'sha256').length),
        },
      ],
    });
    figures.push(...lookups);
    return figures;
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}

/** A median figure's value and its runs. */
function medianOf(runs: readonly number[]): { value: number; runs: readonly number[] } {
  return { value: median(runs), runs };
}
