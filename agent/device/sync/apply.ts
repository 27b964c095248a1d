import { createHash, type Hash } from 'node:crypto';
import { encodeBase64 } from '../../core/encoding';
import { VouchError } from '../../core/errors';
import { rootPath } from '../../core/layout';
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
  type Anchor,
  type Commit,
  commitState,
  EntriesWriter,
  hasSignedTime,
  markFirstCommit,
  type RootFile,
  storedRoot,
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

/**
 * What the device holds and extends: the committed tree (its compact range), index and
 * entries; nothing for a new device, or for a repair, which downloads everything again.
 */
export interface Held {
  readonly size: number;
  readonly range: CompactRange;
  readonly index: SubjectIndex;
  /** SHA-256 of the committed index file; undefined when there is none to keep. */
  readonly indexSha256: string | undefined;
  readonly entriesBytes: number;
  /** SHA-256 over the committed entries, verified; extended from a copy. */
  readonly entriesHash: Hash;
}

export function heldOf(state: TrustState, entriesHash: Hash): Held {
  return {
    size: state.checkpoint.checkpoint.size,
    range: state.range,
    index: state.index,
    indexSha256: state.indexSha256,
    entriesBytes: state.entriesBytes,
    entriesHash,
  };
}

export const nothingHeld = (): Held => ({
  size: 0,
  range: new CompactRange(),
  index: SubjectIndex.empty(),
  indexSha256: undefined,
  entriesBytes: 0,
  entriesHash: createHash('sha256'),
});

/**
 * Where the trust starts: the anchor (the newest verified checkpoint) with what is held, or
 * a first root for a device without state (or one being reset).
 */
export type Trust = {
  readonly held: Held;
  /**
   * The newest root version a commit of this device named (OpenedState.rootFloor): a sync
   * that cannot reach it fails, so that a damaged file never takes the device back to an
   * older root, one that may still trust a signer or key a later root removed.
   */
  readonly rootFloor: number;
  /** Commit even when the log did not change (damage, a commit of an earlier version). */
  readonly rewrite: boolean;
} & ({ readonly anchor: Anchor } | { readonly anchor: undefined; readonly first: RootFile });

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
 * Walks root updates from the trusted root and returns the newest, which must not have
 * expired (TUF §5.3: expiry of the newest only). Version v comes from the state's own
 * roots/ when a file there verifies (a commit cut short, or one whose record is damaged,
 * left it), else from `next(v)` (a mirror, a snapshot; undefined when it has none). A chain
 * that ends below the trust's root floor fails.
 */
export async function updateRoots(
  ctx: Context,
  trust: Trust,
  next: (version: number) => Promise<Uint8Array | undefined>,
): Promise<{ readonly root: Root; readonly newRoots: RootFile[] }> {
  let root = trust.anchor ? trust.anchor.root : verifyRoot(parseRootEnvelope(trust.first.bytes));
  const newRoots: RootFile[] = trust.anchor ? [] : [{ ...trust.first, version: root.version }];
  const rotation = (bytes: Uint8Array, from: Root): Root => {
    const newer = verifyRoot(parseRootEnvelope(bytes), from);
    // A root names one log: a device follows one tree from its first checkpoint on.
    if (newer.log.origin !== from.log.origin) {
      throw new VouchError(
        'ROOT_INVALID',
        `root v${newer.version} moves to log ${newer.log.origin} from ${from.log.origin}`,
      );
    }
    return newer;
  };
  const stored = async (version: number, from: Root) => {
    const bytes = trust.anchor && (await storedRoot(ctx.dir, version));
    if (!bytes) return undefined;
    try {
      return { bytes, root: rotation(bytes, from) };
    } catch {
      return undefined; // damaged, or of another chain: the source's copy decides
    }
  };
  for (let step = 0; step < maxRootSteps; step++) {
    const version = root.version + 1;
    let newer = await stored(version, root);
    if (!newer) {
      const bytes = await next(version);
      if (bytes === undefined) break;
      newer = { bytes, root: rotation(bytes, root) };
    }
    root = newer.root;
    newRoots.push({ version, bytes: newer.bytes });
  }
  if (root.version < trust.rootFloor) {
    throw new VouchError(
      'UNAVAILABLE',
      `${ctx.source} has no ${rootPath(root.version + 1)}, and this device verified trust root ` +
        `v${trust.rootFloor}: a sync never goes back to an older root; use a mirror or snapshot that has it`,
    );
  }
  requireUnexpired(root, new Date(ctx.now));
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
 * Rollback and fork checks against the anchor (the newest verified checkpoint), before any
 * entry is fetched: the tree must not shrink, nor move back in time, and a tree of the same
 * size must have the same root. Once the device has a signed time of its log, a checkpoint
 * must bring one too: without it nothing says how old it is (docs/security.md "The device
 * state").
 */
export async function checkAgainstAnchor(
  ctx: Context,
  anchor: Anchor | undefined,
  incoming: Incoming,
): Promise<void> {
  if (!anchor) return;
  const size = incoming.checkpoint.checkpoint.size;
  const local = anchor.checkpoint.checkpoint;
  if (size < local.size) {
    throw new VouchError(
      'LOG_ROLLBACK',
      `${ctx.source} offers a tree of ${size} entries; this device has verified ${local.size}`,
    );
  }
  if (
    size === local.size &&
    Buffer.compare(local.root, incoming.checkpoint.checkpoint.root) !== 0
  ) {
    await saveFork(ctx, anchor, incoming, 'a checkpoint of the same size with another root');
  }
  const time = incoming.checkpoint.time;
  if (time === undefined) {
    // Stripping the log's cosignature line leaves a valid checkpoint without a time: taken,
    // it would count as fresh from the sync, and slip a larger but old tree past the clock
    // floor below. Witness cosignatures cannot be stripped below the quorum.
    if (hasSignedTime(anchor)) {
      throw new VouchError(
        'LOG_ROLLBACK',
        `${ctx.source} offers a checkpoint without a signed time, though this device has ` +
          `seen this log's signed times (the newest ${new Date(anchor.clockFloor).toISOString()}): ` +
          "the log's cosignature line was stripped from it; try another mirror or snapshot",
      );
    }
    return;
  }
  if (size > local.size && time < anchor.clockFloor) {
    throw new VouchError(
      'LOG_ROLLBACK',
      `${ctx.source} offers a checkpoint cosigned at ${new Date(time).toISOString()}, before ` +
        `the newest time this device has seen (${new Date(anchor.clockFloor).toISOString()})`,
    );
  }
}

/** Saves the two conflicting log-signed checkpoints as evidence, then fails with LOG_FORK. */
export async function saveFork(
  ctx: Context,
  anchor: Anchor,
  incoming: Incoming,
  reason: string,
  proof?: readonly Uint8Array[],
): Promise<never> {
  await addForkEvidence(ctx.dir, {
    detectedAt: ctx.now,
    source: ctx.source,
    reason,
    local: anchor.note,
    remote: incoming.note,
    ...(proof ? { proof: proof.map(encodeBase64) } : {}),
  });
  ctx.logger.error({ source: ctx.source, reason }, 'log fork detected; evidence saved');
  throw new VouchError(
    'LOG_FORK',
    `fork: ${ctx.source} serves ${reason} (its size ${incoming.checkpoint.checkpoint.size}, ` +
      `this device's ${anchor.checkpoint.checkpoint.size}); both log-signed checkpoints are ` +
      'saved as evidence (see vouch status; vouch fork clear)',
  );
}

/** A commit of `incoming` on top of the anchor: the root chain, clock floor and previous commit. */
function commitOf(
  trust: Trust,
  incoming: Incoming,
  rest: Pick<Commit, 'note' | 'range' | 'index' | 'entriesBytes' | 'entriesSha256'>,
): Commit {
  return {
    ...rest,
    chain: [...(trust.anchor?.chain ?? []), ...incoming.newRoots],
    newRoots: incoming.newRoots,
    size: incoming.checkpoint.checkpoint.size,
    clockFloor: Math.max(trust.anchor?.clockFloor ?? 0, incoming.checkpoint.time ?? 0),
    previous: trust.anchor?.record,
  };
}

/**
 * Verifies and commits a checkpoint of the size already held: newer roots or newer
 * cosignatures (a later time, so a higher clock floor) are worth keeping, and so is a
 * state that needs rewriting.
 */
export async function commitUnchanged(
  ctx: Context,
  trust: Trust,
  incoming: Incoming,
): Promise<Applied> {
  const { anchor, held } = trust;
  const time = incoming.checkpoint.time;
  const newer = time !== undefined && (anchor?.checkpointTime ?? -1) < time;
  if (!anchor || incoming.newRoots.length > 0 || newer || trust.rewrite) {
    if (!anchor) await markFirstCommit(ctx.dir);
    await commitState(
      ctx.dir,
      commitOf(trust, incoming, {
        note: newer || !anchor ? incoming.note : anchor.note,
        range: held.range,
        index: held.indexSha256 === undefined ? held.index : { sha256: held.indexSha256 },
        entriesBytes: held.entriesBytes,
        entriesSha256: held.entriesHash.copy().digest('hex'),
      }),
    );
  }
  return {
    origin: incoming.checkpoint.checkpoint.origin,
    previousSize: anchor?.checkpoint.checkpoint.size ?? 0,
    size: incoming.checkpoint.checkpoint.size,
    added: 0,
    indexed: 0,
    skipped: [],
    rootVersion: incoming.root.version,
    checkpointTime: newer || !anchor ? time : anchor.checkpointTime,
  };
}

/**
 * Applies the entries of a tree larger than what is held. `bundles` yields runs of entries
 * in order, from at most the held size (a mirror's first bundle) or from 0 (a snapshot, or
 * a repair: the entries below the held size are only re-hashed). Passing the anchor's size,
 * the tree must have the anchor's root, or it is a fork. When the entries do not give the
 * checkpoint's root, `diagnose` tells a broken source from a fork (it throws either way).
 */
export async function applyEntries(
  ctx: Context,
  trust: Trust,
  incoming: Incoming,
  bundles: AsyncIterable<Bundle>,
  startAt: number,
  diagnose: () => Promise<never>,
): Promise<Applied> {
  const { anchor, held } = trust;
  const local = anchor?.checkpoint.checkpoint;
  const localSize = local?.size ?? 0;
  const size = incoming.checkpoint.checkpoint.size;
  // A copy: a failed attempt must leave the held state as it was for the next mirror.
  const range =
    startAt === 0 ? new CompactRange() : CompactRange.of(held.range.size, held.range.hashes);
  if (range.size !== startAt)
    throw new VouchError('INTERNAL', 'entries must start at 0 or the held size');
  if (!anchor) await markFirstCommit(ctx.dir);
  const checker = await EntryChecker.for(incoming.root, size - held.size);
  const writer = await EntriesWriter.open(ctx.dir, held.entriesBytes, held.entriesHash.copy());
  let committed = false;
  try {
    // Records go into the index builder as results arrive: no per-record objects are kept.
    const index = held.index.extend(size - held.size);
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
      const checkFrom = Math.max(next, held.size) - firstIndex;
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
    if (prefixDiffers && anchor) {
      await saveFork(
        ctx,
        anchor,
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
    await commitState(
      ctx.dir,
      commitOf(trust, incoming, {
        note: incoming.note,
        range,
        index: built,
        entriesBytes: writer.length,
        entriesSha256: writer.sha256,
      }),
    );
    committed = true;
    return {
      origin: incoming.checkpoint.checkpoint.origin,
      previousSize: localSize,
      size,
      added: size - held.size,
      indexed: index.rows,
      skipped,
      rootVersion: incoming.root.version,
      checkpointTime: incoming.checkpoint.time,
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
