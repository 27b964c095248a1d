import { encodeBase64 } from '../../core/encoding';
import { VouchError } from '../../core/errors';
import { CompactRange, hashSize } from '../../core/merkle';
import { parseRootEnvelope, type Root, requireUnexpired, verifyRoot } from '../../core/root';
import {
  decodeEntryBundle,
  entryBundlePath,
  fullWidth,
  type TileId,
  tilePath,
} from '../../core/tiles';
import type { Logger } from '../../logger';
import {
  commitState,
  EntriesWriter,
  type RootFile,
  type TrustState,
  type VerifiedCheckpoint,
} from '../store/state';
import { addForkEvidence } from '../store/status';
import { SubjectIndex } from '../store/subjects';
import { EntryChecker } from './checker';
import type { SkippedEntry } from './entries';

/**
 * The steps a sync from a mirror and a snapshot import share, in the order of issue #5:
 * root chain updates → checkpoint (log signature, witness quorum) → rollback and fork
 * checks → entries (leaf hashes against the tiles, statements checked on worker threads)
 * → compact range extended and compared with the checkpoint root → index → commit.
 */

/** Where the trust starts: the committed state, or a first root for a device without one. */
export type Trust =
  | { readonly state: TrustState }
  | { readonly state: undefined; readonly first: RootFile };

export interface Context {
  readonly dir: string;
  /** Where the data comes from (mirror URL, snapshot path), for reports and evidence. */
  readonly source: string;
  /** Trusted time (ms): the clock, never below the clock floor. */
  readonly now: number;
  readonly logger: Logger;
}

/** The most root versions one sync walks; a longer chain is applied over several syncs. */
const maxRootSteps = 256;

/**
 * Walks root updates (`next(v)` gives version v or undefined) from the trusted root and
 * returns the newest, which must not have expired (TUF §5.3: expiry of the newest only).
 */
export async function updateRoots(
  trust: Trust,
  next: (version: number) => Promise<Uint8Array | undefined>,
  now: number,
): Promise<{ readonly root: Root; readonly newRoots: RootFile[] }> {
  let root = trust.state ? trust.state.root : verifyRoot(parseRootEnvelope(trust.first.bytes));
  const newRoots: RootFile[] = trust.state ? [] : [{ ...trust.first, version: root.version }];
  for (let step = 0; step < maxRootSteps; step++) {
    const bytes = await next(root.version + 1);
    if (bytes === undefined) break;
    const newer = verifyRoot(parseRootEnvelope(bytes), root);
    // A root names one log: a device follows one tree from its first checkpoint on.
    if (newer.log.origin !== root.log.origin) {
      throw new VouchError(
        'ROOT_INVALID',
        `root v${newer.version} moves to log ${newer.log.origin} from ${root.log.origin}`,
      );
    }
    root = newer;
    newRoots.push({ version: root.version, bytes });
  }
  requireUnexpired(root, new Date(now));
  return { root, newRoots };
}

/** An entry bundle as served (c2sp.org/tlog-tiles), and its level-0 tile hashes when known. */
export interface Bundle {
  readonly tile: TileId;
  readonly bytes: Uint8Array;
  readonly tileHashes?: readonly Uint8Array[];
}

export interface Applied {
  readonly origin: string;
  readonly previousSize: number;
  readonly size: number;
  /** Entries added to the state. */
  readonly added: number;
  /** Records (one per digest of a statement subject) added to the index. */
  readonly indexed: number;
  readonly skipped: readonly SkippedEntry[];
  readonly rootVersion: number;
  readonly checkpointTime: number | undefined;
}

export interface Incoming {
  readonly root: Root;
  readonly newRoots: readonly RootFile[];
  readonly checkpoint: VerifiedCheckpoint;
  /** The checkpoint note as received. */
  readonly note: string;
}

/**
 * Rollback and fork checks against the committed state, before any entry is fetched.
 * Returns true when the tree has not grown (nothing to fetch).
 */
export async function checkAgainstState(
  ctx: Context,
  state: TrustState | undefined,
  incoming: Incoming,
): Promise<boolean> {
  const size = incoming.checkpoint.checkpoint.size;
  if (!state) return size === 0;
  const local = state.checkpoint.checkpoint;
  if (size < local.size) {
    throw new VouchError(
      'LOG_ROLLBACK',
      `${ctx.source} offers a tree of ${size} entries; this device has verified ${local.size}`,
    );
  }
  if (size === local.size) {
    if (Buffer.compare(local.root, incoming.checkpoint.checkpoint.root) !== 0) {
      await saveFork(ctx, state, incoming, 'a checkpoint of the same size with another root');
    }
    return true;
  }
  const time = incoming.checkpoint.time;
  if (time !== undefined && time < state.clockFloor) {
    throw new VouchError(
      'LOG_ROLLBACK',
      `${ctx.source} offers a checkpoint cosigned at ${new Date(time).toISOString()}, before ` +
        `the newest time this device has seen (${new Date(state.clockFloor).toISOString()})`,
    );
  }
  return false;
}

/** Saves the two conflicting log-signed checkpoints as evidence, then fails with LOG_FORK. */
export async function saveFork(
  ctx: Context,
  state: TrustState,
  incoming: Incoming,
  reason: string,
  proof?: readonly Uint8Array[],
): Promise<never> {
  await addForkEvidence(ctx.dir, {
    detectedAt: ctx.now,
    source: ctx.source,
    reason,
    local: state.note,
    remote: incoming.note,
    ...(proof ? { proof: proof.map(encodeBase64) } : {}),
  });
  ctx.logger.error({ source: ctx.source, reason }, 'log fork detected; evidence saved');
  throw new VouchError(
    'LOG_FORK',
    `fork: ${ctx.source} serves ${reason} (its size ${incoming.checkpoint.checkpoint.size}, ` +
      `this device's ${state.checkpoint.checkpoint.size}); both log-signed checkpoints are ` +
      'saved as evidence (see vouch status; vouch fork clear)',
  );
}

/**
 * Verifies and commits a checkpoint whose tree did not grow: newer roots or newer
 * cosignatures (a later time, so a higher clock floor) are worth keeping.
 */
export async function commitUnchanged(
  ctx: Context,
  state: TrustState | undefined,
  incoming: Incoming,
): Promise<Applied> {
  const size = incoming.checkpoint.checkpoint.size;
  const time = incoming.checkpoint.time;
  const newer = time !== undefined && (state?.checkpointTime ?? -1) < time;
  if (!state || incoming.newRoots.length > 0 || newer) {
    await commitState(ctx.dir, {
      newRoots: incoming.newRoots,
      rootVersion: incoming.root.version,
      note: newer || !state ? incoming.note : state.note,
      size,
      clockFloor: Math.max(state?.clockFloor ?? 0, time ?? 0),
      range: state?.range ?? new CompactRange(),
      index: state ? undefined : SubjectIndex.empty(),
      entriesBytes: state?.entriesBytes ?? 0,
    });
  }
  return {
    origin: incoming.checkpoint.checkpoint.origin,
    previousSize: state?.checkpoint.checkpoint.size ?? 0,
    size,
    added: 0,
    indexed: 0,
    skipped: [],
    rootVersion: incoming.root.version,
    checkpointTime: newer || !state ? time : state.checkpointTime,
  };
}

/**
 * Applies the entries of a grown tree. `bundles` yields runs of entries in order, from
 * at most the local size (a mirror's first bundle) or from 0 (a snapshot: the entries the
 * device has are re-hashed and must give its own root). When the entries do not give the
 * checkpoint's root, `diagnose` tells a broken source from a fork (it throws either way).
 */
export async function applyEntries(
  ctx: Context,
  state: TrustState | undefined,
  incoming: Incoming,
  bundles: AsyncIterable<Bundle>,
  startAt: number,
  diagnose: () => Promise<never>,
): Promise<Applied> {
  const local = state?.checkpoint.checkpoint;
  const localSize = local?.size ?? 0;
  const size = incoming.checkpoint.checkpoint.size;
  // A copy: a failed attempt must leave the loaded state as it was for the next mirror.
  const range =
    startAt === 0 || !state
      ? new CompactRange()
      : CompactRange.of(state.range.size, state.range.hashes);
  if (range.size !== startAt)
    throw new VouchError('INTERNAL', 'entries must start at 0 or the local size');
  const checker = EntryChecker.for(incoming.root, size - localSize);
  const writer = await EntriesWriter.open(ctx.dir, state?.entriesBytes ?? 0);
  let committed = false;
  try {
    // Records go into the index builder as results arrive: no per-record objects are kept.
    const index = (state?.index ?? SubjectIndex.empty()).extend(size - localSize);
    const skipped: SkippedEntry[] = [];
    let prefixDiffers = false;
    // Checks run ahead on the worker threads; their results are applied in log order.
    const inFlight: Promise<() => Promise<void>>[] = [];
    const drain = async (limit: number) => {
      while (inFlight.length > limit) {
        const apply = await (inFlight.shift() as Promise<() => Promise<void>>);
        await apply();
      }
    };
    let next = startAt;
    for await (const { tile, bytes, tileHashes } of bundles) {
      const entries = decodeEntryBundle(bytes, tile);
      const firstIndex = tile.index * fullWidth;
      const end = firstIndex + entries.length;
      if (firstIndex > next || end <= next || end > size) {
        throw new VouchError(
          'TILE_INVALID',
          `${ctx.source}: entries ${firstIndex}…${end - 1} out of order (expected ${next})`,
        );
      }
      // Entries the device already has (replayed from 0) are only hashed.
      const from = next - firstIndex;
      const checkFrom = Math.max(next, localSize) - firstIndex;
      next = end;
      const pending = checker
        .check({ tile, bytes, from, checkFrom })
        .then((checked) => async () => {
          for (let i = from; i < entries.length; i++) {
            const at = (i - from) * hashSize;
            const leaf = checked.leafHashes.subarray(at, at + hashSize);
            checkTileHash(ctx, tileHashes, i, leaf, tile);
            range.append(leaf);
            if (
              range.size === localSize &&
              local &&
              Buffer.compare(range.root(), local.root) !== 0
            ) {
              prefixDiffers = true;
            }
          }
          index.add(checked.records);
          skipped.push(...checked.skipped);
          // The entries file holds the bundle encoding: the new entries are written as served.
          const fresh = entries[checkFrom];
          if (fresh) await writer.append(bytes.subarray(fresh.byteOffset - bytes.byteOffset - 2));
        });
      // Awaited in order by drain(); a failure must not count as unhandled meanwhile.
      pending.catch(() => {});
      inFlight.push(pending);
      await drain(16);
    }
    await drain(0);
    // Every entry is checked: the threads (and their memory) go while the index is built;
    // `finally` waits for them.
    checker.close().catch(() => {});
    if (range.size !== size) {
      throw new VouchError(
        'TILE_INVALID',
        `${ctx.source}: ${range.size} of ${size} entries served`,
      );
    }
    if (Buffer.compare(range.root(), incoming.checkpoint.checkpoint.root) !== 0) await diagnose();
    if (prefixDiffers && state) {
      await saveFork(
        ctx,
        state,
        incoming,
        "a larger tree that does not contain this device's verified tree",
      );
    }
    for (const entry of skipped.slice(0, 5)) {
      ctx.logger.warn(
        entry,
        'logged entry not indexed: not a valid statement under the trust root',
      );
    }
    // The entries reach the disk while the index is built.
    const synced = writer.sync();
    synced.catch(() => {});
    const built = index.build();
    await synced;
    const time = incoming.checkpoint.time;
    await commitState(ctx.dir, {
      newRoots: incoming.newRoots,
      rootVersion: incoming.root.version,
      note: incoming.note,
      size,
      clockFloor: Math.max(state?.clockFloor ?? 0, time ?? 0),
      range,
      index: built,
      entriesBytes: writer.length,
    });
    committed = true;
    return {
      origin: incoming.checkpoint.checkpoint.origin,
      previousSize: localSize,
      size,
      added: size - localSize,
      indexed: index.rows,
      skipped,
      rootVersion: incoming.root.version,
      checkpointTime: time,
    };
  } finally {
    await writer.close(committed);
    await checker.close();
  }
}

/** c2sp.org/tlog-tiles: entry i of bundle N hashes to hash i of level-0 tile N. */
function checkTileHash(
  ctx: Context,
  tileHashes: readonly Uint8Array[] | undefined,
  i: number,
  leaf: Uint8Array,
  tile: TileId,
): void {
  if (!tileHashes) return;
  const expected = tileHashes[i];
  if (!expected || Buffer.compare(expected, leaf) !== 0) {
    // Which of the two files is damaged, nothing here can tell: both are named.
    throw new VouchError(
      'TILE_INVALID',
      `${ctx.source}: entry ${tile.index * fullWidth + i} in ${entryBundlePath(tile)} does not hash to its tile, ${tilePath(tile)}`,
    );
  }
}
