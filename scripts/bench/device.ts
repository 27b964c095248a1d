/**
 * Device state benchmarks (issue #5), run by scripts/bench.ts: the initial import of
 * 100,000 statements from a file:// mirror, an incremental sync of 1,000, index lookups
 * and index memory — each beside a native or plain-JS baseline measured in the same run.
 */

import { execFile } from 'node:child_process';
import { createHash, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cp, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  addSignature,
  pae,
  parseEnvelope,
  serializeEnvelope,
  signEnvelope,
} from '../../agent/core/dsse';
import { generateKey, namePublicKey } from '../../agent/core/keys';
import { unsignedRoot } from '../../agent/core/root';
import { encodeStatement, statementPayloadType } from '../../agent/core/statement';
import { loadState, syncFromMirrors } from '../../agent/device';
import { SubjectIndex } from '../../agent/device/store/subjects';
import { appendEntries, initLog, publicDir, publishLog } from '../../agent/ledger';
import { createLogger } from '../../agent/logger';

const statements = 100_000;
const increment = 1_000;
const origin = 'bench.example.org/log';
const signerId = 'notary@example.org';
const logger = createLogger('cli', 'silent');
const exec = promisify(execFile);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function timed(run: () => Promise<unknown> | unknown): Promise<number> {
  const start = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function line(name: string, value: string, ratio?: number): void {
  console.log(
    `  ${name.padEnd(52)} ${value.padStart(18)}${ratio === undefined ? '' : `   ×${ratio.toFixed(2)}`}`,
  );
}

/** Statement i, signed by the signer: a realistic image name and a distinct digest. */
function envelopes(from: number, to: number, key: ReturnType<typeof generateKey>['key']) {
  return Array.from({ length: to - from }, (_, k) => {
    const i = from + k;
    const payload = encodeStatement({
      subjects: [
        {
          name: `ghcr.io/home-assistant/aarch64-addon-${i % 500}:2025.${i % 12}.${i}`,
          sha256: createHash('sha256').update(`subject ${i}`).digest('hex'),
        },
      ],
      status: 'trusted',
      signer: signerId,
      issuedAt: new Date(Date.UTC(2025, 0, 1) + i * 1000),
    });
    return new Uint8Array(
      Buffer.from(serializeEnvelope(signEnvelope(statementPayloadType, payload, key))),
    );
  });
}

export async function deviceBench(): Promise<void> {
  const base = await mkdtemp(join(tmpdir(), 'vouch-bench-device-'));
  try {
    console.log(
      `\nDevice state: sync, index (a log of ${statements.toLocaleString('en')} statements)`,
    );
    // The log: statements signed with node:crypto, appended and published by the ledger.
    const logKey = generateKey();
    const signer = generateKey();
    const rootKey = generateKey();
    const keyPath = join(base, 'log.key');
    await writeFile(keyPath, logKey.privatePem, { mode: 0o600 });
    const logDir = join(base, 'log');
    await initLog(logDir, origin, keyPath, logKey.key);
    const all = envelopes(0, statements + increment, signer.key);
    await appendEntries(logDir, all.slice(0, statements));
    await publishLog(logDir, logKey.key);
    const mirror100k = join(base, 'mirror-100k');
    await cp(publicDir(logDir), mirror100k, { recursive: true });
    await appendEntries(logDir, all.slice(statements));
    await publishLog(logDir, logKey.key);
    const root = {
      version: 1,
      expires: '2099-01-01T00:00:00Z',
      rootKeys: [namePublicKey('root', rootKey.key.raw)],
      threshold: 1,
      log: { origin, key: namePublicKey(origin, logKey.key.raw) },
      witnesses: [],
      witnessQuorum: 0,
      signers: [{ id: signerId, keys: [namePublicKey(signerId, signer.key.raw)], scopes: ['**'] }],
    };
    const rootPath = join(base, 'root.json');
    await writeFile(rootPath, serializeEnvelope(addSignature(unsignedRoot(root), rootKey.key)));
    const sync = (stateDir: string, mirror: string) =>
      syncFromMirrors({
        stateDir,
        mirrors: [pathToFileURL(mirror).href],
        rootPath,
        timeoutMs: 60_000,
        maxBundleBytes: 1 << 24,
        logger,
      });

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
    const signerObject = namePublicKey(signerId, signer.key.raw).object;
    const parsed = all.slice(0, statements).map(parseEnvelope);
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
    const imports: number[] = [];
    for (let run = 0; run < 2; run++) {
      const dir = await mkdtemp(join(base, 'import-'));
      imports.push(await timed(() => sync(dir, mirror100k)));
      if (state100k) await rm(dir, { recursive: true });
      else state100k = dir;
    }
    const importRate = statements / median(imports);
    line(
      `initial import of ${statements.toLocaleString('en')} (sync, file:// mirror)`,
      `${importRate.toFixed(0)} stmt/s`,
      importRate / opensslRate,
    );

    // Incremental: fresh copies of the 100k state, each brought to 101k.
    const increments: number[] = [];
    for (let run = 0; run < 3; run++) {
      const dir = await mkdtemp(join(base, 'incremental-'));
      await cp(state100k, dir, { recursive: true });
      increments.push(await timed(() => sync(dir, publicDir(logDir))));
      await rm(dir, { recursive: true });
    }
    line(
      `incremental sync of ${increment.toLocaleString('en')} (file:// mirror)`,
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
    for (const { sha256, record } of loaded.records()) records.set(sha256, [record]);
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
    for (const { sha256, record } of state.index.records()) map.set(sha256, [record]);
    const lookMap = () => {
      for (const digest of digests) map.get(digest);
    };
    const lookIndex = () => {
      for (const digest of digests) state.index.lookup(digest);
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
