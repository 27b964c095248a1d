import type { Hash } from 'node:crypto';
import { join } from 'node:path';
import { maxEnvelopeBytes } from '../../core/dsse';
import { asVouchError, VouchError } from '../../core/errors';
import { keyLabel } from '../../core/keys';
import { rootPath } from '../../core/layout';
import {
  CompactRange,
  consistencyProof,
  type HashReader,
  verifyConsistency,
} from '../../core/merkle';
import { maxNoteSize, type Note, parseNote } from '../../core/note';
import { parseRootEnvelope, type Root, verifyRoot } from '../../core/root';
import {
  decodeTile,
  entryBundlePath,
  fullWidth,
  maxBundleBytes,
  type TileId,
  tileHashReader,
  tilePath,
} from '../../core/tiles';
import { makeDirectory, readFileCapped } from '../../files';
import { acquireLock } from '../../lock';
import type { Logger } from '../../logger';
import { noMirror, rememberMirrors } from '../store/mirrors';
import {
  type Anchor,
  checkEntries,
  type Damage,
  damageError,
  moveAsideDamaged,
  namedBy,
  type OpenedState,
  openState,
  removeStale,
  restoreRoot,
  stateFiles,
  type VerifiedCheckpoint,
  verifyCheckpoint,
} from '../store/state';
import { type MirrorResult, recordAttempt, type SyncAttempt } from '../store/status';
import {
  type Applied,
  applyEntries,
  type Bundle,
  type Context,
  checkAgainstAnchor,
  commitUnchanged,
  type Held,
  heldOf,
  type Incoming,
  nothingHeld,
  saveFork,
  type Trust,
  updateRoots,
} from './apply';
import { type Mirror, openMirror } from './mirror';

export interface SyncOptions {
  readonly stateDir: string;
  /** Mirror URLs, tried in order until one sync succeeds. */
  readonly mirrors: readonly string[];
  /** A signed root file: the first trusted root of a device without state. */
  readonly rootPath?: string | undefined;
  /** Remember `mirrors` in the state directory once a sync from them succeeds (`--mirror`). */
  readonly rememberMirrors?: boolean;
  /**
   * `vouch state reset`: start again from `rootPath` as a new device would, replacing the
   * state; refused while a verified checkpoint survives, unless `force`.
   */
  readonly reset?: { readonly force: boolean };
  /** Per request, body included (ms). */
  readonly timeoutMs: number;
  /** To open a connection to a mirror (ms); default `timeoutMs` (see MirrorOptions). */
  readonly connectTimeoutMs?: number | undefined;
  readonly maxBundleBytes: number;
  readonly logger: Logger;
  /** The clock (ms); tests set it. */
  readonly clock?: () => number;
}

export interface SyncReport extends Repaired<Applied> {
  readonly source: string;
  readonly mirrors: readonly MirrorResult[];
}

/** Bundles fetched ahead of the one being checked. */
const prefetch = 8;
/**
 * Errors that are the device's own, not a mirror's (or a snapshot's): trying another mirror
 * cannot help, and the inbox keeps the snapshot to try again.
 */
export const localErrors = new Set([
  'IO',
  'INTERNAL',
  'FILE_EXISTS',
  'STATE_INVALID',
  'STATE_LOCKED',
  'NO_TRUST_ROOT',
]);

/** The state as a sync finds it: what it holds and the newest checkpoint it can trust. */
export interface LocalState extends OpenedState {
  readonly dir: string;
  readonly held: Held;
}

/**
 * Opens the state for a sync (undefined for a new device): besides what loading checks, the
 * entries file is read once against its committed digest, since a sync extends it.
 */
export async function openLocalState(dir: string): Promise<LocalState | undefined> {
  const opened = await openState(dir);
  if (!opened) return undefined;
  if (!opened.state) return { ...opened, dir, held: nothingHeld() };
  const entries: Hash | Damage = await checkEntries(opened.state);
  if ('problem' in entries) {
    const damage = [...opened.damage, entries];
    return { ...opened, dir, state: undefined, damage, rewrite: true, held: nothingHeld() };
  }
  return { ...opened, dir, held: heldOf(opened.state, entries) };
}

/** What a sync or an import did, with the damaged state files its commit replaced. */
export type Repaired<T> = T & { readonly repaired: readonly string[] };

/**
 * Holds the state lock for `body`, with the state opened (undefined for a new device) and
 * leftovers of interrupted syncs removed; records the attempt (a sync from mirrors or an
 * import from `source`), with what `body` put into `mirrors`, in status.json. A commit
 * leaves a whole state: the files found damaged are reported as repaired.
 */
export async function withState<T extends Applied>(
  options: {
    readonly stateDir: string;
    readonly logger: Logger;
    readonly clock?: (() => number) | undefined;
  },
  kind: SyncAttempt['kind'],
  source: string,
  mirrors: MirrorResult[],
  body: (local: LocalState | undefined, now: number) => Promise<T>,
): Promise<Repaired<T>> {
  const dir = options.stateDir;
  await makeDirectory(dir);
  const lock = await acquireLock(join(dir, stateFiles.lock), { code: 'STATE_LOCKED' });
  let attempt: SyncAttempt | undefined;
  try {
    const local = await openLocalState(dir);
    await removeStale(dir, local?.state ? namedBy(local.state) : undefined);
    for (const { file, problem } of local?.damage ?? []) {
      options.logger.warn({ file }, `damaged state file ${file}: ${problem}`);
    }
    for (const path of await moveAsideDamaged(dir, local?.damage ?? [])) {
      options.logger.warn({ path }, `moved ${path} aside: it stood where a state file belongs`);
    }
    const now = Math.max((options.clock ?? Date.now)(), local?.anchor?.clockFloor ?? 0);
    const fromSize = local?.anchor?.checkpoint.checkpoint.size ?? 0;
    try {
      const result = await body(local, now);
      attempt = {
        at: now,
        ok: true,
        kind,
        source,
        fromSize,
        toSize: result.size,
        added: result.added,
        skipped: result.skipped.length,
      };
      return { ...result, repaired: local?.damage.map((damage) => damage.file) ?? [] };
    } catch (error) {
      const failure = asVouchError(error);
      attempt = {
        at: now,
        ok: false,
        kind,
        source,
        fromSize,
        error: { code: failure.code, message: failure.message },
      };
      throw error;
    }
  } finally {
    if (attempt) await recordAttempt(dir, attempt, mirrors).catch(() => {});
    await lock.release();
  }
}

/**
 * `vouch sync`: brings the state up to the newest checkpoint a mirror offers, trying the
 * mirrors in order. A mirror that fails (unreachable, too slow, too large, bad data,
 * rollback, fork) is reported and the next is tried; the state changes only by a commit
 * of fully verified data. A damaged state is repaired on the way (openState in state.ts).
 */
export async function syncFromMirrors(options: SyncOptions): Promise<SyncReport> {
  const dir = options.stateDir;
  if (options.mirrors.length === 0) throw noMirror(dir);
  const results: MirrorResult[] = [];
  return withState(options, 'sync', options.mirrors.join(' '), results, async (opened, now) => {
    if (options.reset && opened?.anchor && !options.reset.force) {
      throw new VouchError(
        'USAGE',
        `state reset: ${dir} still has a verified checkpoint (${opened.anchor.file}, size ` +
          `${opened.anchor.checkpoint.checkpoint.size}): vouch sync repairs what is damaged; ` +
          'add --force to give up its rollback protection anyway',
      );
    }
    let local = options.reset ? undefined : opened;
    // Before any mirror, unless root files must come back from one first: a bad first root
    // is the device's own problem, not a failure of every mirror in turn.
    const settled =
      local && local.lostRoots.length > 0 ? undefined : await trustOf(local, options.rootPath);
    const failures: VouchError[] = [];
    for (const [at, url] of options.mirrors.entries()) {
      const ctx: Context = { dir, source: url, now, logger: options.logger };
      try {
        const mirror = openMirror(url, {
          timeoutMs: options.timeoutMs,
          connectTimeoutMs: options.connectTimeoutMs,
          logger: options.logger,
        });
        let trust = settled;
        if (!trust) {
          local = await restoreRoots(ctx, local as LocalState, (version) =>
            mirror.get(rootPath(version), maxEnvelopeBytes),
          );
          trust = await trustOf(local, options.rootPath);
        }
        const applied = await syncFromMirror(ctx, trust, mirror, options.maxBundleBytes);
        results.push({ url, at: now, ok: true, size: applied.size });
        options.logger.debug({ mirror: url, size: applied.size, added: applied.added }, 'synced');
        if (options.rememberMirrors) {
          await rememberMirrors(dir, options.mirrors, now).catch((error: unknown) => {
            const failure = asVouchError(error);
            options.logger.warn(
              { code: failure.code },
              `mirrors not remembered: ${failure.message}`,
            );
          });
        }
        return { ...applied, source: url, mirrors: results };
      } catch (error) {
        const caught = asVouchError(error);
        const local = localErrors.has(caught.code);
        const failure = local ? caught : aboutMirror(url, caught);
        results.push({
          url,
          at: now,
          ok: false,
          error: { code: failure.code, message: failure.message },
        });
        if (local) throw error;
        // The last mirror's failure is in the error this sync ends with.
        if (at < options.mirrors.length - 1) {
          options.logger.warn(
            { mirror: url, code: failure.code },
            `${failure.message}; trying the next mirror`,
          );
        }
        failures.push(failure);
      }
    }
    throw combine(failures);
  });
}

/**
 * Takes back root files the state lost from a mirror or snapshot (`fetch(version)`), each
 * only with the SHA-256 its commit records, then opens the state again. A source without
 * them fails, unless a verified checkpoint survives anyway (the chain is then verified
 * again from it).
 */
export async function restoreRoots(
  ctx: Context,
  local: LocalState,
  fetch: (version: number) => Promise<Uint8Array | undefined>,
): Promise<LocalState> {
  try {
    for (const lost of local.lostRoots) {
      const path = rootPath(lost.version);
      const bytes = await fetch(lost.version);
      if (bytes === undefined) throw new VouchError('UNAVAILABLE', `${ctx.source} has no ${path}`);
      await restoreRoot(ctx.dir, lost, bytes);
      ctx.logger.info({ source: ctx.source }, `restored ${path}`);
    }
  } catch (error) {
    const failure = asVouchError(error);
    if (localErrors.has(failure.code) || !local.anchor) throw error;
    ctx.logger.warn({ source: ctx.source, code: failure.code }, failure.message);
  }
  const reopened = await openLocalState(ctx.dir);
  if (!reopened) throw new VouchError('INTERNAL', `${ctx.dir}: the state vanished`);
  return reopened;
}

/**
 * The device's trust: its anchor (the newest verified checkpoint), else for a device
 * without state (or one being reset) the first root from `rootPath`.
 */
export async function trustOf(
  local: LocalState | undefined,
  rootPath: string | undefined,
): Promise<Trust> {
  if (local) {
    if (!local.anchor) throw damageError(local.dir, local);
    const { anchor, held, rewrite, rootFloor } = local;
    return { anchor, held, rewrite, rootFloor };
  }
  if (rootPath === undefined) {
    throw new VouchError(
      'NO_TRUST_ROOT',
      'this device has no trust state yet: give the first trusted root with --root ROOT (or root in the configuration)',
    );
  }
  const bytes = await readFileCapped(rootPath, maxEnvelopeBytes, 'trust root');
  if (bytes === undefined) throw new VouchError('IO', `trust root ${rootPath} does not exist`);
  // Checked here, before any mirror, though updateRoots checks it again: a bad first root
  // is the device's own problem, not a failure of every mirror in turn.
  try {
    verifyRoot(parseRootEnvelope(bytes));
  } catch (error) {
    const failure = asVouchError(error);
    throw new VouchError(failure.code, `trust root ${rootPath}: ${failure.message}`, {
      cause: failure,
    });
  }
  return {
    anchor: undefined,
    first: { version: 0, bytes },
    held: nothingHeld(),
    rewrite: true,
    rootFloor: 0,
  };
}

/** One error for a sync that no mirror could complete: the gravest, naming every mirror. */
function combine(failures: readonly VouchError[]): VouchError {
  const rank = (error: VouchError) =>
    error.code === 'LOG_FORK'
      ? 3
      : error.code === 'LOG_ROLLBACK'
        ? 2
        : error.kind === 'data'
          ? 1
          : 0;
  const gravest = [...failures].sort((a, b) => rank(b) - rank(a))[0] as VouchError;
  if (failures.length === 1) return gravest;
  return new VouchError(
    gravest.code,
    `no mirror could be synced: ${failures.map((failure) => failure.message).join('; ')}`,
    { cause: gravest },
  );
}

async function syncFromMirror(
  ctx: Context,
  trust: Trust,
  mirror: Mirror,
  bundleCap: number,
): Promise<Applied> {
  // The checkpoint is fetched first, though checked after the roots (it needs the newest
  // root's log key): whether the URL is a log at all shows in the first answer.
  const noteBytes = await mirror.get('checkpoint', maxNoteSize);
  if (noteBytes === undefined) {
    throw new VouchError(
      'UNAVAILABLE',
      `mirror ${mirror.url} has no checkpoint (not found): is this the log's URL (the directory that holds checkpoint and tile/)?`,
    );
  }
  let rootFile: string | undefined;
  const { root, newRoots } = await updateRoots(ctx, trust, async (version) => {
    const path = rootPath(version);
    const bytes = await mirror.get(path, maxEnvelopeBytes);
    rootFile = bytes && path;
    return bytes;
  }).catch((error: unknown) => {
    throw rootFile ? aboutMirror(mirror.url, asVouchError(error), rootFile) : error;
  });
  const checkpoint = verifyCheckpointFrom(`the log at ${mirror.url}`, noteBytes, root);
  const incoming: Incoming = {
    root,
    newRoots,
    checkpoint,
    note: Buffer.from(noteBytes).toString('utf8'),
  };
  await checkAgainstAnchor(ctx, trust.anchor, incoming);
  const heldSize = trust.held.size;
  const size = checkpoint.checkpoint.size;
  if (size === heldSize) return commitUnchanged(ctx, trust, incoming);

  const tiles = new Map<string, Promise<Uint8Array>>();
  const fetchTile = (tile: TileId): Promise<Uint8Array> => {
    const path = tilePath(tile);
    let bytes = tiles.get(path);
    if (!bytes) {
      bytes = required(mirror, path, tile.width * 32);
      bytes.catch(() => {});
      tiles.set(path, bytes);
    }
    return bytes;
  };
  const fetchBundle = async (index: number): Promise<Bundle> => {
    const width = Math.min(fullWidth, size - index * fullWidth);
    const tile = { level: 0, index, width };
    const cap = maxBundleBytes(width, bundleCap);
    const [bundle, hashes] = await Promise.all([
      required(mirror, entryBundlePath(tile), cap),
      fetchTile(tile),
    ]);
    return { tile, bytes: bundle, tileHashes: decodeTile(hashes, tile) };
  };
  const first = Math.floor(heldSize / fullWidth);
  async function* bundles(): AsyncGenerator<Bundle> {
    const ahead: Promise<Bundle>[] = [];
    const last = Math.ceil(size / fullWidth);
    let queued = first;
    for (;;) {
      while (queued < last && ahead.length < prefetch) {
        const bundle = fetchBundle(queued++);
        bundle.catch(() => {});
        ahead.push(bundle);
      }
      const nextBundle = ahead.shift();
      if (!nextBundle) return;
      yield await nextBundle;
    }
  }
  return applyEntries(ctx, trust, incoming, bundles(), heldSize, () =>
    diagnoseMismatch(ctx, trust.anchor, incoming, tileHashReader(size, fetchTile)),
  );
}

/**
 * The mirror's entries do not give its checkpoint's root. Either the mirror serves broken
 * data, or the log signed a tree that does not extend ours (a fork). The tiles tell: the
 * tree's prefix of the local size, read from them, must be proven by a consistency proof
 * (RFC 9162 §2.1.4) from the same tiles up to the signed root; if so the tiles are the
 * log's, and a prefix root other than ours is a fork.
 */
async function diagnoseMismatch(
  ctx: Context,
  anchor: Anchor | undefined,
  incoming: Incoming,
  reader: HashReader,
): Promise<never> {
  const signed = incoming.checkpoint.checkpoint;
  const local = anchor?.checkpoint.checkpoint;
  const broken = new VouchError(
    'TILE_INVALID',
    `${ctx.source}: the entries do not give the checkpoint's root hash`,
  );
  if (!anchor || !local || local.size === 0) throw broken;
  let proof: Uint8Array[];
  let prefixRoot: Uint8Array;
  try {
    proof = await consistencyProof(local.size, signed.size, reader);
    prefixRoot = CompactRange.of(local.size, await reader(CompactRange.nodes(local.size))).root();
    verifyConsistency(local.size, signed.size, prefixRoot, signed.root, proof);
  } catch (error) {
    if (error instanceof VouchError && error.code !== 'UNAVAILABLE') throw broken;
    throw error;
  }
  if (Buffer.compare(prefixRoot, local.root) === 0) throw broken;
  return saveFork(
    ctx,
    anchor,
    incoming,
    "a larger tree that does not contain this device's verified tree",
    proof,
  );
}

async function required(mirror: Mirror, path: string, maxBytes: number): Promise<Uint8Array> {
  const bytes = await mirror.get(path, maxBytes);
  if (bytes === undefined) {
    throw new VouchError(
      'TILE_INVALID',
      `mirror ${mirror.url}: ${path} is missing (not found), though its checkpoint covers it`,
    );
  }
  return bytes;
}

/**
 * A mirror's failure that does not say which mirror (a check of a root, a tile, an
 * entry), saying it, and the file when known.
 */
function aboutMirror(url: string, error: VouchError, file?: string): VouchError {
  if (error.message.includes(url)) return error;
  const where = file === undefined ? url : `${url}: ${file}`;
  return new VouchError(error.code, `mirror ${where}: ${error.message}`, { cause: error });
}

/**
 * verifyCheckpoint, with a failure said in plain words: a checkpoint of another log (its
 * origin is not the root's), one of this log's name signed by another key than the root
 * names, or one whose log signature does not verify. `source` says where it came from
 * (`the log at URL`, `the snapshot FILE`).
 */
export function verifyCheckpointFrom(
  source: string,
  noteBytes: Uint8Array,
  root: Root,
): VerifiedCheckpoint {
  try {
    return verifyCheckpoint(noteBytes, root);
  } catch (error) {
    const failure = asVouchError(error);
    let note: Note;
    try {
      note = parseNote(noteBytes);
    } catch {
      throw new VouchError(failure.code, `${source}: checkpoint: ${failure.message}`, {
        cause: failure,
      });
    }
    const origin = note.text.slice(0, note.text.indexOf('\n'));
    const key = root.log.key;
    const signedBy = note.signatures.map(keyLabel).join(', ') || 'no one';
    const expects = `trust root v${root.version} expects ${root.log.origin}, signed by ${keyLabel(key)}`;
    const rightKey = note.signatures.some(
      (signature) =>
        signature.name === key.name && Buffer.compare(signature.keyId, key.keyId) === 0,
    );
    const message =
      origin !== root.log.origin
        ? `${source} is another log: its checkpoint is for ${origin}, signed by ${signedBy}; your ${expects}`
        : failure.code === 'NOTE_UNVERIFIED' && !rightKey
          ? `${source} is signed by a different key than your trust root expects (the checkpoint is signed by ${signedBy}; ${expects})`
          : failure.code === 'NOTE_UNVERIFIED'
            ? `${source}: the log key's signature on the checkpoint does not verify: the checkpoint was altered or damaged`
            : `${source}: checkpoint: ${failure.message}`;
    throw new VouchError(failure.code, message, { cause: failure });
  }
}
