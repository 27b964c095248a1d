import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { openCheckpoint, type SignedCheckpoint } from '../../core/checkpoint';
import { logCosigner, quorumTime, verifyCosignatures } from '../../core/cosignature';
import { decodeBase64, encodeBase64 } from '../../core/encoding';
import { EntriesFileReader } from '../../core/entries-file';
import { asVouchError, VouchError } from '../../core/errors';
import { describeIssues, parseJson } from '../../core/json';
import { rootPath, rootsDir, rootVersionOf, rootVersions } from '../../core/layout';
import { CompactRange, hashLeaf } from '../../core/merkle';
import { maxNoteSize } from '../../core/note';
import { parseRootEnvelope, type Root, verifyRoot } from '../../core/root';
import {
  fsPath,
  ioError,
  makeDirectory,
  openRegularFile,
  readFileCapped,
  syncDirectory,
  WrongFileType,
  writeFileDurably,
} from '../../files';
import { sealIntact, sealRecord } from './sealed';
import { SubjectIndex } from './subjects';

/**
 * The device's verified trust state in its state directory (docs/formats.md "Device state directory"):
 *
 *   checkpoint.json           the commit point: the latest verified checkpoint note with its
 *                             cosignatures (their times), the clock floor, the compact range,
 *                             the root chain it was verified under, and the names and digests
 *                             of the index and entries it covers, all under a digest of its own
 *   checkpoint.previous.json  the commit before it, as it was: the anchor when checkpoint.json
 *                             is damaged (rollback and fork checks need a verified checkpoint)
 *   roots/<V>.json            the trust root chain (signed root envelopes), oldest trusted first
 *   index-<size>.bin          the subject index for that tree size (subjects.ts)
 *   entries                   the log's entries 0 … size−1, uint16-length-prefixed (tlog-tiles
 *                             bundle encoding, concatenated); bytes past the committed length
 *                             are leftovers of an interrupted sync
 *   first-sync                there while a first sync (or a reset) writes, before its commit
 *
 * A commit writes roots, entries and the index first (each durable), then replaces
 * checkpoint.json, then checkpoint.previous.json with the commit it replaced: a crash at any
 * moment leaves the old commit or the new one (and a previous commit at most one older than
 * it should be), and files no commit names are ignored and cleaned up by the next sync.
 *
 * Damage (an SD card's bad block, a truncated file, another file type in a file's place) is
 * found when the state loads, and named: a damaged index or entries file, or a damaged
 * checkpoint.json whose previous commit still verifies, is repaired by a sync (a full
 * download checked against the surviving checkpoint); a damaged root file comes back from a
 * mirror only byte for byte, by the SHA-256 a commit records for it. A repair never goes
 * back to an older root than a sealed commit names (the root floor). Only when no commit
 * verifies, both checkpoint files included, is `vouch state reset` needed.
 */

export const stateFiles = {
  commit: 'checkpoint.json',
  previousCommit: 'checkpoint.previous.json',
  roots: rootsDir,
  entries: 'entries',
  status: 'status.json',
  fork: 'fork.json',
  /** The mirrors of the last `vouch sync --mirror …` that succeeded (store/mirrors.ts). */
  mirrors: 'mirrors.json',
  lock: 'lock',
  /** Images an operator lets run whatever their verdict (docker/allow.ts); not trust state. */
  allow: 'allow.json',
  allowLock: 'allow.lock',
  /**
   * Written before a first commit (a new device, a reset) writes anything, removed with the
   * stale files once a commit verifies: with it, files without a commit are that commit cut
   * short; without it, a device that lost both checkpoint files.
   */
  firstSync: 'first-sync',
} as const;

const indexName = (size: number) => `index-${size}.bin`;
const indexFileName = /^index-[0-9]+\.bin$/;
const maxCommitBytes = 1024 * 1024;
const maxRootFileBytes = 2 * 1024 * 1024;
/** An index row is ~60 bytes plus its strings; 2^32 bytes is tens of millions of statements. */
const maxIndexBytes = 2 ** 32 - 1;
const maxRootVersions = 4096;
const format = 'vouch-state/v2';

export interface RootFile {
  readonly version: number;
  readonly bytes: Uint8Array;
}

/**
 * A verified checkpoint the device holds on to: a newer one must extend it (rollback and
 * fork checks), and its clock floor bounds "now".
 */
export interface Anchor {
  /** The root chain as stored (signed root envelopes), oldest first; the last is current. */
  readonly chain: readonly RootFile[];
  readonly root: Root;
  readonly checkpoint: VerifiedCheckpoint;
  /** The checkpoint note as received (text and every signature line). */
  readonly note: string;
  /** The checkpoint's signed time (ms), {@link VerifiedCheckpoint.time}. */
  readonly checkpointTime: number | undefined;
  /** The newest checkpoint or cosignature time seen (ms): "now" is never earlier. */
  readonly clockFloor: number;
  /** The commit record as its file holds it: the next commit keeps it as the previous one. */
  readonly record: Uint8Array;
  /** The file it was read from: checkpoint.json, or checkpoint.previous.json. */
  readonly file: string;
}

/**
 * Whether this device has ever taken a signed time from its log: the clock floor rises
 * only from checkpoints' signed times (sync/apply.ts commitOf; verifyRecord below when a state
 * loads), so it is above 0 exactly then. From then on a checkpoint without one has had it
 * stripped (refused: sync/apply.ts checkAgainstAnchor), and the last mirror sync no longer
 * stands in for it.
 */
export function hasSignedTime(anchor: Anchor): boolean {
  return anchor.clockFloor > 0;
}

export interface TrustState extends Anchor {
  readonly dir: string;
  readonly range: CompactRange;
  readonly index: SubjectIndex;
  /** SHA-256 (hex) of the index file, as committed. */
  readonly indexSha256: string;
  /** Committed length of the entries file. */
  readonly entriesBytes: number;
  /** SHA-256 (hex) of the committed entries; undefined in a commit of an earlier version. */
  readonly entriesSha256: string | undefined;
}

/** A damaged file of the state directory (its name there) and what is wrong with it. */
export interface Damage {
  readonly file: string;
  readonly problem: string;
}

/** A root file a commit names, with the SHA-256 it had when it was verified. */
export interface RootDigest {
  readonly version: number;
  readonly sha256: string;
}

/** What a sync finds in the state directory. */
export interface OpenedState {
  /** The committed state, complete and verified; undefined when any of it is damaged. */
  readonly state: TrustState | undefined;
  /** The newest verified checkpoint: the state's, else the previous commit's. */
  readonly anchor: Anchor | undefined;
  readonly damage: readonly Damage[];
  /** Root files a commit records a digest for, missing or damaged: a mirror may have them. */
  readonly lostRoots: readonly RootDigest[];
  /**
   * The newest root version a commit record names whose seal holds (verified or not): a sync
   * must reach it, so that a damaged file never takes the device back to an older root (one
   * that still lists a signer or key a later one removed). 0 when no record is readable.
   */
  readonly rootFloor: number;
  /**
   * The files are not as a commit writes them now (damage, no previous commit, a commit of
   * an earlier version): the next sync commits even when the log did not change.
   */
  readonly rewrite: boolean;
}

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);
const version = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const recordFields = {
  rootVersion: version,
  checkpoint: z.string().max(maxNoteSize),
  clockFloor: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  range: z.array(z.string().max(64)).max(64),
  index: z.strictObject({ file: z.string().regex(indexFileName), sha256: z.string() }),
};
const entriesBytes = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const currentRecord = z.strictObject({
  format: z.literal(format),
  ...recordFields,
  /** The root chain, oldest first: a damaged root file is taken back only with its digest. */
  roots: z
    .array(z.strictObject({ version, sha256: sha256Hex }))
    .min(1)
    .max(maxRootVersions),
  entries: z.strictObject({ bytes: entriesBytes, sha256: sha256Hex }),
  /** SHA-256 of the record without this field (JSON, in this order): any flipped byte shows. */
  recordSha256: sha256Hex,
});
const recordSchema = z.discriminatedUnion('format', [
  currentRecord,
  // Written before damage could be told apart (no digests): still read, rewritten by a sync.
  z.strictObject({
    format: z.literal('vouch-state/v1'),
    ...recordFields,
    entries: z.strictObject({ bytes: entriesBytes }),
  }),
]);
type CommitRecord = z.output<typeof recordSchema>;

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');
const size = (anchor: Anchor) => anchor.checkpoint.checkpoint.size;

/** A damaged file, found while the state is read. */
class DamageError extends Error {
  constructor(readonly damage: Damage) {
    super(`${damage.file}: ${damage.problem}`);
  }
}

function damaged(file: string, problem: string): never {
  throw new DamageError({ file, problem });
}

/**
 * Read failures that are the file's own damage, repaired like any other: a bad block or a
 * corrupt file system (EIO; EBADMSG, and EUCLEAN "structure needs cleaning", which node does
 * not name: Linux numbers), or something other than a regular file in its place. Others stay
 * I/O errors, which a repair cannot mend: EACCES or EPERM (vouch runs as a user that may
 * not read its state; the message says so), EMFILE, ENOMEM.
 */
const damageErrnos = new Set([
  constants.errno.EIO,
  constants.errno.EBADMSG,
  117, // EUCLEAN
  constants.errno.EISDIR,
  constants.errno.ENOTDIR,
  constants.errno.ELOOP,
]);

function isFileDamage(error: unknown): boolean {
  if (error instanceof WrongFileType) return true;
  const cause = error instanceof VouchError ? error.cause : error;
  const errno = (cause as NodeJS.ErrnoException | undefined)?.errno;
  return errno !== undefined && damageErrnos.has(Math.abs(errno));
}

/** What reading the state found so far: damaged files, and root files a mirror may give back. */
class Inspection {
  readonly damage: Damage[] = [];
  readonly lostRoots: RootDigest[] = [];

  constructor(readonly dir: string) {}

  /**
   * Runs `read`, which concerns `file`: a vouch error in it (other than an I/O error that
   * is not the file's damage) is damage of `file` (or of the file a DamageError names),
   * noted, and gives undefined.
   */
  async check<T>(file: string, read: () => Promise<T> | T): Promise<T | undefined> {
    try {
      return await read();
    } catch (error) {
      if (error instanceof DamageError) {
        this.note(error.damage);
        return undefined;
      }
      const failure = asVouchError(error);
      if (failure.kind === 'internal' || (failure.kind === 'io' && !isFileDamage(failure))) {
        throw error;
      }
      this.note({ file, problem: failure.message });
      return undefined;
    }
  }

  note(damage: Damage): void {
    if (!this.damage.some((known) => known.file === damage.file)) this.damage.push(damage);
  }

  lose(root: RootDigest): void {
    if (!this.lostRoots.some((known) => known.version === root.version)) this.lostRoots.push(root);
  }
}

interface RecordFile {
  readonly record: CommitRecord;
  readonly bytes: Uint8Array;
}

/** A commit record file, checked against its own digest: 'missing', or undefined when damaged. */
async function readRecord(
  inspection: Inspection,
  file: string,
): Promise<RecordFile | 'missing' | undefined> {
  const bytes = await inspection.check(file, () =>
    readFileCapped(join(inspection.dir, file), maxCommitBytes, 'state commit'),
  );
  if (bytes === undefined) {
    return inspection.damage.some((damage) => damage.file === file) ? undefined : 'missing';
  }
  return inspection.check(file, () => {
    const json = parseJson(bytes, 'STATE_INVALID', 'state commit');
    const parsed = recordSchema.safeParse(json);
    if (!parsed.success) return damaged(file, describeIssues(parsed.error));
    if (parsed.data.format === format && !sealIntact(json)) {
      damaged(file, 'does not match its own digest (recordSha256)');
    }
    return { record: parsed.data, bytes };
  });
}

/** The root files of a record's chain, oldest first, with their digests when it records them. */
async function chainOf(
  dir: string,
  file: string,
  record: CommitRecord,
): Promise<readonly RootEntry[]> {
  if (record.format === format) {
    const last = record.roots.at(-1)?.version;
    if (last !== record.rootVersion) damaged(file, `its root chain ends at v${last}`);
    return record.roots;
  }
  // A v1 record: the contiguous versions on disk up to the committed one.
  const names = await readdir(fsPath(join(dir, stateFiles.roots))).catch(() => [] as string[]);
  const versions = rootVersions(names).filter((v) => v <= record.rootVersion);
  const first = versions[0];
  if (
    first === undefined ||
    versions.at(-1) !== record.rootVersion ||
    versions.length !== record.rootVersion - first + 1
  ) {
    damaged(
      stateFiles.roots,
      `the root chain up to v${record.rootVersion} is incomplete (have ${versions.join(', ')})`,
    );
  }
  return versions.map((version) => ({ version, sha256: undefined }));
}

interface RootEntry {
  readonly version: number;
  readonly sha256: string | undefined;
}

/**
 * Verifies a commit record as an anchor: its root chain link by link (each file against its
 * recorded digest first), the checkpoint's log signature and witness quorum under the last
 * root, the compact range against the checkpoint's root hash. Undefined when damaged.
 */
async function verifyRecord(
  inspection: Inspection,
  file: string,
  { record, bytes }: RecordFile,
): Promise<{ readonly anchor: Anchor; readonly range: CompactRange } | undefined> {
  const { dir } = inspection;
  const entries = await inspection.check(file, () => chainOf(dir, file, record));
  if (!entries) return undefined;
  const chain: RootFile[] = [];
  for (const { version, sha256: digest } of entries) {
    const name = rootPath(version);
    const fileBytes = await inspection.check(name, async () => {
      const read = await readFileCapped(join(dir, name), maxRootFileBytes, 'trust root');
      if (read === undefined) damaged(name, 'is missing');
      if (digest !== undefined && sha256(read) !== digest) {
        damaged(name, 'does not match the SHA-256 its commit records');
      }
      return read;
    });
    if (fileBytes) chain.push({ version, bytes: fileBytes });
    else if (digest !== undefined) inspection.lose({ version, sha256: digest });
  }
  // Every damaged root file is named (a mirror may give each back) before giving up.
  if (chain.length !== entries.length) return undefined;
  let root: Root | undefined;
  for (const link of chain) {
    const name = rootPath(link.version);
    root = await inspection.check(name, () => {
      const verified = verifyRoot(parseRootEnvelope(link.bytes), root);
      if (verified.version !== link.version) damaged(name, `holds root v${verified.version}`);
      return verified;
    });
    if (!root) return undefined;
  }
  const trusted = root as Root;
  return inspection.check(file, () => {
    const checkpoint = verifyCheckpoint(record.checkpoint, trusted);
    const range = CompactRange.of(
      checkpoint.checkpoint.size,
      record.range.map((hash) => decodeBase64(hash, 'compact range hash')),
    );
    if (Buffer.compare(range.root(), checkpoint.checkpoint.root) !== 0) {
      damaged(file, 'the compact range does not give the checkpoint root');
    }
    const anchor: Anchor = {
      chain,
      root: trusted,
      checkpoint,
      note: record.checkpoint,
      checkpointTime: checkpoint.time,
      // Never below the checkpoint's own signed time, even for a state committed by a vouch
      // that did not read the log's cosignature yet.
      clockFloor: Math.max(record.clockFloor, checkpoint.time ?? 0),
      record: bytes,
      file,
    };
    return { anchor, range };
  });
}

/**
 * The files a commit record covers besides its checkpoint: the index (against its digest)
 * and the entries (their length). Checked whether or not the checkpoint verified, so that
 * loading names every damaged file at once.
 */
async function checkCovered(
  inspection: Inspection,
  record: CommitRecord,
): Promise<{ readonly index: SubjectIndex } | undefined> {
  const { dir } = inspection;
  const file = record.index.file;
  const index = await inspection.check(file, async () => {
    const bytes = await readFileCapped(join(dir, file), maxIndexBytes, 'index');
    if (bytes === undefined) damaged(file, 'is missing');
    if (sha256(bytes) !== record.index.sha256) {
      damaged(file, 'does not match its committed digest');
    }
    return SubjectIndex.decode(bytes);
  });
  const entriesOk = await inspection.check(stateFiles.entries, async () => {
    const length = await entriesLength(dir);
    if (length < record.entries.bytes) {
      damaged(stateFiles.entries, `holds ${length} bytes, ${record.entries.bytes} committed`);
    }
    return true;
  });
  return index && entriesOk ? { index } : undefined;
}

/** The length of the entries file (0 when there is none), which must be a regular file. */
async function entriesLength(dir: string): Promise<number> {
  const path = join(dir, stateFiles.entries);
  const handle = await openRegularFile(path, 'entries');
  if (!handle) return 0;
  try {
    return (await handle.stat()).size;
  } catch (error) {
    throw ioError('read', path, error);
  } finally {
    await handle.close();
  }
}

/** The whole state of a verified record whose covered files are intact. */
function completeState(
  inspection: Inspection,
  record: CommitRecord,
  { anchor, range }: { readonly anchor: Anchor; readonly range: CompactRange },
  { index }: { readonly index: SubjectIndex },
): TrustState | undefined {
  const expected = indexName(size(anchor));
  if (record.index.file !== expected) {
    inspection.note({ file: anchor.file, problem: `names ${record.index.file}, not ${expected}` });
    return undefined;
  }
  return {
    ...anchor,
    dir: inspection.dir,
    range,
    index,
    indexSha256: record.index.sha256,
    entriesBytes: record.entries.bytes,
    entriesSha256: record.format === format ? record.entries.sha256 : undefined,
  };
}

/**
 * The root version a record names, when its seal holds (a record of the current format) or
 * it verified (an anchor, of any format); else 0.
 */
function floorOf(read: RecordFile | 'missing' | undefined, anchor: Anchor | undefined): number {
  const sealed = typeof read === 'object' && read.record.format === format;
  return Math.max(sealed ? read.record.rootVersion : 0, anchor?.root.version ?? 0);
}

/**
 * Whether the directory holds files that only a commit leaves (root files, index files,
 * entries), with no first sync under way: a device that synced before, not a new one. An
 * empty entries file does not count: an earlier vouch left one after a failed first sync.
 */
async function committedBefore(dir: string): Promise<boolean> {
  const names = await readdir(fsPath(dir)).catch(() => [] as string[]);
  if (names.includes(stateFiles.firstSync)) return false;
  const roots = await readdir(fsPath(join(dir, stateFiles.roots))).catch(() => [] as string[]);
  const entries = await stat(fsPath(join(dir, stateFiles.entries))).catch(() => undefined);
  return (
    rootVersions(roots).length > 0 ||
    names.some((name) => indexFileName.test(name)) ||
    (entries !== undefined && entries.size > 0)
  );
}

/**
 * Reads and verifies what the state directory holds (see the top of this file); undefined
 * when it holds no commit at all and nothing a commit leaves: a new device, or one whose
 * first sync (or reset) never committed. With `stopAtState`, a complete state is returned
 * without looking at the previous commit.
 */
export async function openState(
  dir: string,
  { stopAtState = false } = {},
): Promise<OpenedState | undefined> {
  const inspection = new Inspection(dir);
  const current = await readRecord(inspection, stateFiles.commit);
  let state: TrustState | undefined;
  let anchor: Anchor | undefined;
  if (current === 'missing') inspection.note({ file: stateFiles.commit, problem: 'is missing' });
  else if (current) {
    const verified = await verifyRecord(inspection, stateFiles.commit, current);
    const covered = await checkCovered(inspection, current.record);
    anchor = verified?.anchor;
    if (verified && covered) state = completeState(inspection, current.record, verified, covered);
  }
  if (state && stopAtState) {
    return {
      state,
      anchor,
      damage: [],
      lostRoots: [],
      rootFloor: state.root.version,
      rewrite: false,
    };
  }
  const previous = await readRecord(inspection, stateFiles.previousCommit);
  if (current === 'missing' && previous === 'missing') {
    if (!(await committedBefore(dir))) return undefined;
    // Both lost (fsck may move damaged files away): without an anchor, a first root must
    // not start the device afresh, which would take any older tree the log key signed.
    inspection.note({
      file: stateFiles.previousCommit,
      problem: 'is missing too, though root, index or entries files of a commit are there',
    });
  }
  const previousAnchor =
    typeof previous === 'object'
      ? (await verifyRecord(inspection, stateFiles.previousCommit, previous))?.anchor
      : undefined;
  const rootFloor = Math.max(floorOf(current, anchor), floorOf(previous, previousAnchor));
  // The newer of the two: checkpoint.json put back from an old copy must not lower the bar.
  if (previousAnchor && size(previousAnchor) > (anchor ? size(anchor) : -1))
    anchor = previousAnchor;
  return {
    state,
    anchor,
    damage: inspection.damage,
    lostRoots: inspection.lostRoots,
    rootFloor,
    rewrite:
      !state ||
      !previousAnchor ||
      (typeof current === 'object' && current.record.format !== format),
  };
}

/**
 * The committed state, verified (see {@link openState}); undefined when the device has no
 * state yet. Damage is an error that names each damaged file and the command that mends it.
 */
export async function loadState(dir: string): Promise<TrustState | undefined> {
  const opened = await openState(dir, { stopAtState: true });
  if (opened?.state) return opened.state;
  if (!opened) return undefined;
  throw damageError(dir, opened);
}

/** What is damaged, and what to run: `vouch sync` while it can mend it, else `vouch state reset`. */
export function damageError(
  dir: string,
  opened: Pick<OpenedState, 'damage' | 'anchor' | 'lostRoots'>,
): VouchError {
  const what = opened.damage.map((damage) => `${damage.file}: ${damage.problem}`).join('; ');
  const advice = opened.anchor
    ? `run vouch sync to repair it from the mirrors (checked against the verified checkpoint in ${opened.anchor.file})`
    : opened.lostRoots.length > 0
      ? 'run vouch sync to fetch the damaged root files again from a mirror (only files with the SHA-256 the commit records are taken); if no mirror has them, no verified checkpoint survives: vouch state reset --root ROOT'
      : 'no verified checkpoint survives: run vouch state reset --root ROOT (see its --help for what that gives up)';
  return new VouchError('STATE_INVALID', `state ${dir} is damaged: ${what}; ${advice}`);
}

export interface VerifiedCheckpoint extends SignedCheckpoint {
  /**
   * The checkpoint's signed time in ms (c2sp.org/tlog-cosignature timestamps): the newer of
   * the log's own cosignature and the newest time a quorum of the root's witnesses vouch
   * for (cosignature.ts quorumTime). Undefined when neither is there: a log published
   * before vouch signed its times, without witnesses, or a mirror that stripped the log's
   * cosignature (sync/apply.ts checkAgainstAnchor refuses that once a time was seen).
   */
  readonly time: number | undefined;
}

/**
 * A checkpoint note signed by the root's log key, for the root's log origin, with a quorum
 * of the root's witnesses. Its time comes only from cosignatures by keys the root trusts:
 * anyone can add a cosignature line, and lines by unknown keys are ignored
 * (c2sp.org/signed-note §Signatures); a failing one by a known key rejects the note.
 *
 * A time ahead of the device's clock is believed (up to the year 9999, cosignature.ts
 * maxTimestamp): tlog-cosignature §Format lets verifiers reject future times, but a device
 * without a real-time clock cannot tell a signer's clock running ahead from its own running
 * behind (it boots at 1970, or at what fake-hwclock or timesyncd saved at shutdown), and
 * refusing would strand the air-gapped devices that have nothing but signed time.
 */
export function verifyCheckpoint(note: string | Uint8Array, root: Root): VerifiedCheckpoint {
  const signed = openCheckpoint(note, root.log.key);
  if (signed.checkpoint.origin !== root.log.origin) {
    throw new VouchError(
      'CHECKPOINT_INVALID',
      `checkpoint is for ${signed.checkpoint.origin}, the trust root names ${root.log.origin}`,
    );
  }
  const witnessed = verifyCosignatures(signed.note, root.witnesses, root.witnessQuorum);
  // The log's own time counts for freshness, never toward the witness quorum.
  const [own] = verifyCosignatures(signed.note, [logCosigner(root.log.key)], 0);
  const times = [own?.timestamp, quorumTime(witnessed, root.witnessQuorum)].filter(
    (time) => time !== undefined,
  );
  return { ...signed, time: times.length > 0 ? Math.max(...times) * 1000 : undefined };
}

/** The committed bytes of the entries file, as a stream of chunks. */
async function* entriesChunks(dir: string, length: number): AsyncGenerator<Uint8Array> {
  if (length === 0) return;
  const path = join(dir, stateFiles.entries);
  try {
    for await (const chunk of createReadStream(fsPath(path), { start: 0, end: length - 1 })) {
      yield chunk as Buffer;
    }
  } catch (error) {
    if (isFileDamage(error))
      damaged(stateFiles.entries, `cannot be read: ${(error as Error).message}`);
    throw ioError('read', path, error);
  }
}

/** The entries of the entries file's chunks, one by one. */
async function* entriesOfFile(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = new EntriesFileReader();
  for await (const chunk of chunks) yield* reader.read(chunk);
  if (!reader.complete) damaged(stateFiles.entries, 'ends in a truncated entry');
}

/** The entries of `chunks`, hashed into the tree on the way: it must give the state's root. */
async function* entriesOfTree(
  state: TrustState,
  chunks: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const range = new CompactRange();
  for await (const entry of entriesOfFile(chunks)) {
    range.append(hashLeaf(entry));
    yield entry;
  }
  const { size, root } = state.checkpoint.checkpoint;
  if (range.size !== size || Buffer.compare(range.root(), root) !== 0) {
    damaged(stateFiles.entries, 'does not give the verified root');
  }
}

/**
 * The state's entries, 0 … size−1, from its entries file, each hashed into the tree on the
 * way, which must give the verified root; a damaged file is an error that says what to run.
 */
export async function* verifiedEntries(state: TrustState): AsyncGenerator<Uint8Array> {
  try {
    yield* entriesOfTree(state, entriesChunks(state.dir, state.entriesBytes));
  } catch (error) {
    if (!(error instanceof DamageError)) throw error;
    throw damageError(state.dir, { anchor: state, lostRoots: [], damage: [error.damage] });
  }
}

/**
 * Reads the committed entries once, for a sync: their SHA-256 must be the committed one (a
 * commit of an earlier version has none: then they must give the verified root). Returns
 * that hash, for the sync to extend with the entries it appends, or the damage.
 */
export async function checkEntries(state: TrustState): Promise<Hash | Damage> {
  const hash = createHash('sha256');
  async function* hashed(): AsyncGenerator<Uint8Array> {
    for await (const chunk of entriesChunks(state.dir, state.entriesBytes)) {
      hash.update(chunk);
      yield chunk;
    }
  }
  try {
    const read = state.entriesSha256 === undefined ? entriesOfTree(state, hashed()) : hashed();
    for await (const _ of read) {
      // Read to the end: the hash (and the tree) see every byte.
    }
  } catch (error) {
    if (error instanceof DamageError) return error.damage;
    throw error;
  }
  if (state.entriesSha256 !== undefined && hash.copy().digest('hex') !== state.entriesSha256) {
    return { file: stateFiles.entries, problem: 'does not match its committed digest' };
  }
  return hash;
}

/**
 * Puts back a root file a commit records (`lost`) from `bytes` fetched elsewhere: only the
 * very file that was verified, by its SHA-256, so nothing new is trusted by this.
 */
export async function restoreRoot(dir: string, lost: RootDigest, bytes: Uint8Array): Promise<void> {
  if (sha256(bytes) !== lost.sha256) {
    throw new VouchError(
      'ROOT_INVALID',
      `${rootPath(lost.version)} differs from the one this device verified (SHA-256 ${lost.sha256})`,
    );
  }
  await makeDirectory(join(dir, stateFiles.roots));
  await writeFileDurably(join(dir, rootPath(lost.version)), bytes);
}

/**
 * A root file in roots/ beyond the anchor's chain (left by a commit cut short, or named by a
 * damaged commit record), or undefined when it is missing or cannot be read. Only a root the
 * caller verifies by the rotation rule is taken (sync/apply.ts updateRoots), as a mirror's.
 */
export async function storedRoot(dir: string, version: number): Promise<Uint8Array | undefined> {
  return readFileCapped(join(dir, rootPath(version)), maxRootFileBytes, 'trust root').catch(
    () => undefined,
  );
}

/** Marks a first commit (a new device, a reset) under way, before it writes any file. */
export async function markFirstCommit(dir: string): Promise<void> {
  await writeFileDurably(join(dir, stateFiles.firstSync), new Uint8Array());
}

/**
 * Moves aside whatever stands in a damaged file's place and is not a regular file (a
 * directory, a FIFO; or a file where its directory should be), so that the repair can
 * write the file: kept as `<name>.damaged-<ms>` for the operator to look at. Run under the
 * sync lock.
 */
export async function moveAsideDamaged(dir: string, damage: readonly Damage[]): Promise<string[]> {
  const moved: string[] = [];
  for (const { file } of damage) {
    for (const name of [file, dirname(file)]) {
      if (name === '.') continue;
      const path = join(dir, name);
      const found = await lstat(fsPath(path)).catch(() => undefined);
      if (!found || found.isFile() || (name !== file && found.isDirectory())) continue;
      const aside = `${path}.damaged-${Date.now()}`;
      await rename(fsPath(path), fsPath(aside)).catch((error: unknown) => {
        throw ioError('move aside', path, error);
      });
      moved.push(aside);
      break;
    }
  }
  if (moved.length > 0) await syncDirectory(dir);
  return moved;
}

/** What a sync or an import hands over to be committed. */
export interface Commit {
  /** The whole root chain the checkpoint is verified under, oldest first. */
  readonly chain: readonly RootFile[];
  /** The root files to write: new to the state (the whole chain for a first commit). */
  readonly newRoots: readonly RootFile[];
  readonly note: string;
  readonly size: number;
  readonly clockFloor: number;
  readonly range: CompactRange;
  /** The index for `size`, or the digest of the committed one, kept (the size is unchanged). */
  readonly index: SubjectIndex | { readonly sha256: string };
  /** The entries file's committed length after this commit, and the SHA-256 of those bytes. */
  readonly entriesBytes: number;
  readonly entriesSha256: string;
  /**
   * The commit record this one replaces (the newest verified one), kept as the previous
   * commit; undefined for a first commit, which is then kept as its own previous one.
   */
  readonly previous: Uint8Array | undefined;
}

/**
 * The entries file, open for appending after the committed length, with the SHA-256 of the
 * committed bytes to extend. Anything past them is from an interrupted sync and is cut off.
 */
export class EntriesWriter {
  private constructor(
    private readonly path: string,
    private readonly handle: Awaited<ReturnType<typeof open>>,
    private position: number,
    private readonly committed: number,
    private readonly hash: Hash,
  ) {}

  static async open(dir: string, committed: number, hash: Hash): Promise<EntriesWriter> {
    const path = join(dir, stateFiles.entries);
    try {
      const handle = await open(fsPath(path), 'a+');
      await handle.truncate(committed);
      return new EntriesWriter(path, handle, committed, committed, hash);
    } catch (error) {
      throw ioError('open', path, error);
    }
  }

  get length(): number {
    return this.position;
  }

  /** SHA-256 (hex) of everything up to the current length. */
  get sha256(): string {
    return this.hash.copy().digest('hex');
  }

  /** Appends entries already encoded, each with its uint16 big-endian length. */
  async append(encoded: Uint8Array): Promise<void> {
    // A full disk is the device's own trouble, said as such (exit code 74), not a crash.
    await this.handle
      .write(encoded, 0, encoded.length, this.position)
      .catch((error: unknown) => Promise.reject(ioError('write', this.path, error)));
    this.hash.update(encoded);
    this.position += encoded.length;
  }

  /** Makes the appended bytes durable; call before the commit that covers them. */
  async sync(): Promise<void> {
    await this.handle
      .sync()
      .catch((error: unknown) => Promise.reject(ioError('write', this.path, error)));
  }

  /** Closes; without a commit, cuts the file back to what is committed. */
  async close(committed: boolean): Promise<void> {
    if (!committed) await this.handle.truncate(this.committed).catch(() => {});
    await this.handle.close();
  }
}

/**
 * Writes a commit: roots, then the index, then checkpoint.json (the commit point), then the
 * commit it replaced as checkpoint.previous.json; then removes what is stale.
 */
export async function commitState(dir: string, commit: Commit): Promise<void> {
  await makeDirectory(join(dir, stateFiles.roots));
  for (const { version, bytes } of commit.newRoots) {
    await writeFileDurably(join(dir, rootPath(version)), bytes);
  }
  const file = indexName(commit.size);
  let indexDigest: string;
  if (commit.index instanceof SubjectIndex) {
    await writeFileDurably(join(dir, file), commit.index.bytes);
    indexDigest = sha256(commit.index.bytes);
  } else {
    indexDigest = commit.index.sha256;
  }
  const last = commit.chain.at(-1);
  if (!last) throw new VouchError('INTERNAL', 'a commit without a trust root');
  const fields: Omit<z.input<typeof currentRecord>, 'recordSha256'> = {
    format,
    rootVersion: last.version,
    checkpoint: commit.note,
    clockFloor: commit.clockFloor,
    range: commit.range.hashes.map(encodeBase64),
    index: { file, sha256: indexDigest },
    roots: commit.chain.map(({ version, bytes }) => ({ version, sha256: sha256(bytes) })),
    entries: { bytes: commit.entriesBytes, sha256: commit.entriesSha256 },
  };
  const record = sealRecord(fields);
  await writeFileDurably(join(dir, stateFiles.commit), record);
  // A crash here leaves the previous commit one older than it should be: still verified.
  await writeFileDurably(join(dir, stateFiles.previousCommit), commit.previous ?? record);
  const roots = commit.chain.map((root) => root.version);
  await removeStale(dir, { index: file, roots }, true);
}

/** The files a commit names, which the next clean-up keeps. */
export interface Named {
  readonly index: string;
  readonly roots: readonly number[];
}

export function namedBy(state: TrustState): Named {
  return {
    index: indexName(state.checkpoint.checkpoint.size),
    roots: state.chain.map((root) => root.version),
  };
}

/**
 * Removes temp files of interrupted writes and, given what the verified commit names, index
 * files of other sizes, root files outside its chain and the first-commit mark. Before a
 * sync (`committing` false) the root files that continue the chain without a gap stay: a
 * commit cut short left them, and the sync takes them if they verify (sync/apply.ts
 * updateRoots); a commit removes them, having tried them. Without a verified commit nothing
 * else is known to be stale: the rest stays for the repair (or the operator). Run under the
 * sync lock.
 */
export async function removeStale(dir: string, named?: Named, committing = false): Promise<void> {
  const temp = (name: string) => /^\..*\.tmp$/.test(name);
  const rootsDir = join(dir, stateFiles.roots);
  const names = await readdir(fsPath(dir)).catch(() => [] as string[]);
  const rootNames = await readdir(fsPath(rootsDir)).catch(() => [] as string[]);
  const kept = new Set(named?.roots);
  if (!committing) {
    for (let next = Math.max(0, ...kept) + 1; rootNames.includes(`${next}.json`); next++) {
      kept.add(next);
    }
  }
  const staleRoot = (name: string) => {
    const version = rootVersionOf(name);
    return named !== undefined && version !== undefined && !kept.has(version);
  };
  const doomed = [
    ...names
      .filter(
        (name) =>
          temp(name) ||
          (named !== undefined &&
            ((indexFileName.test(name) && name !== named.index) || name === stateFiles.firstSync)),
      )
      .map((name) => join(dir, name)),
    ...rootNames
      .filter((name) => temp(name) || staleRoot(name))
      .map((name) => join(rootsDir, name)),
  ];
  for (const path of doomed) await unlink(fsPath(path)).catch(() => {});
  if (doomed.length > 0) await syncDirectory(dir);
}
