import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../agent/core/errors';
import { rootVersionOfPath } from '../../agent/core/layout';
import {
  checkpointName,
  manifestName,
  maxCheckpointBytes,
  maxManifestBytes,
  maxRootBytes,
  parseManifest,
} from '../../agent/core/snapshot-format';
import { importSnapshot, loadState } from '../../agent/device';
import { SnapshotReader } from '../../agent/device/sync/snapshot-reader';
import { exportLogSnapshot } from '../../agent/ledger';
import { createLogger } from '../../agent/logger';
import { grow, testWorld, type World } from '../helpers/device';
import { withChecksum } from '../helpers/tar-split';
import {
  applyByteEdits,
  byteEdits,
  fuzz,
  fuzzAsync,
  jsonMutants,
  params,
  parses,
  parsesAsync,
  rootCodes,
} from './fuzz';

/**
 * Snapshot files (core/snapshot-format.ts) as `vouch snapshot import` reads them: mutants of
 * a real snapshot (exported from a published log), edited in their bytes and in their tar
 * headers with the checksum made right again, so that the reader gets past tar-stream's
 * checks to the members, their order, names and caps.
 */

const caps = { maxBytes: 1 << 24, maxBundleBytes: 1 << 20 };
const silent = createLogger('cli', 'silent');
let world: World;
let dir: string;
let snapshot: Buffer;
/** Where each member's 512-byte header starts. */
let headers: number[];

beforeAll(async () => {
  world = await testWorld();
  await grow(world, 300);
  dir = await mkdtemp(join(tmpdir(), 'vouch-fuzz-snapshot-'));
  const out = join(dir, 'valid.tar');
  await exportLogSnapshot({ out, logDir: world.logDir, ...caps });
  snapshot = await readFile(out);
  headers = [];
  for (let at = 0; at + 512 <= snapshot.length && snapshot[at] !== 0; ) {
    headers.push(at);
    const size = Number.parseInt(snapshot.toString('latin1', at + 124, at + 136), 8);
    at += 512 + Math.ceil(size / 512) * 512;
  }
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** ustar header fields (POSIX pax "ustar Interchange Format"): offset and length. */
const fields = {
  name: [0, 100],
  mode: [100, 8],
  size: [124, 12],
  typeflag: [156, 1],
  linkname: [157, 100],
  magic: [257, 6],
  prefix: [345, 155],
} as const;

interface HeaderEdit {
  readonly member: number;
  readonly field: keyof typeof fields;
  readonly value: string;
}

const headerEdit: fc.Arbitrary<HeaderEdit> = fc.record({
  member: fc.nat(),
  field: fc.constantFrom(...(Object.keys(fields) as (keyof typeof fields)[])),
  value: fc.oneof(
    fc.string({ unit: 'binary-ascii', maxLength: 12 }),
    // Sizes: octal, past a safe integer, base-256, empty; names of other members.
    fc.constantFrom(
      '77777777777',
      '7777777777777',
      '\x80\0\0\0\0\0\xff\xff\xff\xff\xff\xff',
      '',
      '0000001',
      'checkpoint',
      'roots/1.json',
      'roots/0.json',
      'tile/entries/000',
      'tile/entries/001.p/44',
      '../escape',
      '5',
      '2',
      'L',
      'x',
    ),
  ),
});

/** `bytes` with a header field overwritten and the header's checksum made right. */
function applyHeaderEdit(bytes: Buffer, edit: HeaderEdit): Buffer {
  const copy = Buffer.from(bytes);
  const at = headers[edit.member % headers.length] as number;
  if (at + 512 > copy.length) return copy;
  const [offset, length] = fields[edit.field];
  copy.fill(0, at + offset, at + offset + length);
  copy.write(edit.value.slice(0, length), at + offset, 'latin1');
  withChecksum(copy.subarray(at, at + 512));
  return copy;
}

const mutants: fc.Arbitrary<Buffer> = fc
  .tuple(fc.array(headerEdit, { maxLength: 3 }), fc.option(byteEdits, { nil: undefined }))
  .filter(([header, bytes]) => header.length > 0 || bytes !== undefined)
  .map(([header, bytes]) => {
    const edited = header.reduce(applyHeaderEdit, snapshot);
    return Buffer.from(bytes ? applyByteEdits(edited, bytes) : edited);
  });

let cases = 0;
async function tempFile(bytes: Uint8Array): Promise<string> {
  const path = join(dir, `case-${cases++}.tar`);
  await writeFile(path, bytes);
  return path;
}

/** Reads every member as import does, under its cap; the manifest parsed. */
async function readAll(path: string): Promise<void> {
  const file = await open(path);
  const { size } = await file.stat();
  const reader = new SnapshotReader(file, path, size);
  try {
    const manifest = parseManifest(await reader.member(manifestName, maxManifestBytes));
    await reader.member(checkpointName, maxCheckpointBytes);
    for (;;) {
      const name = await reader.peek();
      if (rootVersionOfPath(name ?? '') === undefined) break;
      await reader.member(name as string, maxRootBytes);
    }
    // A declared size past the bundles there are fails at the first one missing.
    for await (const bundle of reader.bundles(manifest.size, caps.maxBundleBytes)) {
      expect(bundle.bytes.length).toBeLessThanOrEqual(caps.maxBundleBytes);
    }
  } finally {
    reader.close();
    await file.close();
    await rm(path);
  }
}

/** What importing a snapshot may fail with: the snapshot's own codes and those of what it holds. */
const importCodes: ErrorCode[] = [
  'SNAPSHOT_INVALID',
  'PAYLOAD_TOO_LARGE',
  'NOTE_INVALID',
  'NOTE_UNVERIFIED',
  'CHECKPOINT_INVALID',
  'WITNESS_QUORUM',
  'TILE_INVALID',
  'PROOF_INVALID',
  ...rootCodes,
];

describe('fuzz: snapshot files', () => {
  it('reads the valid snapshot', async () => {
    await readAll(await tempFile(snapshot));
  });

  it('reads mutants member by member, under the caps, or refuses them with SNAPSHOT_INVALID', async () => {
    await fuzzAsync(mutants, async (bytes) => {
      await parsesAsync(async () => readAll(await tempFile(bytes)), ['SNAPSHOT_INVALID']);
    });
  });

  it('parses mutants of the manifest as a manifest or SNAPSHOT_INVALID', () => {
    const manifest = { format: 'vouch-snapshot/v1', origin: 'log.example.org/vouch', size: 300 };
    fuzz(jsonMutants(manifest), (bytes) => {
      const parsed = parses(() => parseManifest(bytes), ['SNAPSHOT_INVALID']);
      if (parsed !== undefined)
        expect(Number.isSafeInteger(parsed.size) && parsed.size >= 0).toBe(true);
    });
  });

  // A whole import per case (state lock, roots, checkpoint, entries): a fiftieth of the runs.
  it('imports mutants into a new device state, or refuses them with a typed error, leaving no state', async () => {
    await fc.assert(
      fc.asyncProperty(mutants, async (bytes) => {
        const stateDir = await mkdtemp(join(dir, 'state-'));
        const imported = await parsesAsync(
          async () =>
            importSnapshot({
              file: await tempFile(bytes),
              stateDir,
              rootPath: world.rootPath,
              logger: silent,
              ...caps,
            }),
          importCodes,
        );
        const state = await loadState(stateDir);
        if (imported === undefined) expect(state).toBeUndefined();
        else expect(state?.checkpoint.checkpoint.size).toBe(300);
        await rm(stateDir, { recursive: true });
      }),
      params(1 / 50, 10),
    );
  });
});
