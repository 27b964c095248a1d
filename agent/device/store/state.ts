import { createHash } from 'node:crypto';
import { open, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { openCheckpoint, type SignedCheckpoint } from '../../core/checkpoint';
import { logCosigner, verifyCosignatures } from '../../core/cosignature';
import { decodeBase64, encodeBase64 } from '../../core/encoding';
import { VouchError } from '../../core/errors';
import { describeIssues, parseJson } from '../../core/json';
import { CompactRange } from '../../core/merkle';
import { maxNoteSize } from '../../core/note';
import { parseRootEnvelope, type Root, verifyRoot } from '../../core/root';
import {
  fsPath,
  ioError,
  makeDirectory,
  readFileCapped,
  syncDirectory,
  writeFileDurably,
} from '../../files';
import { SubjectIndex } from './subjects';

/**
 * The device's verified trust state in its state directory (docs/formats.md "Device state directory"):
 *
 *   checkpoint.json    the commit point: the latest verified checkpoint note with its
 *                      cosignatures (their times), the clock floor, the compact range, the
 *                      root version it was verified under, and the names and digests of
 *                      the index and entries files it covers
 *   roots/<V>.json     the trust root chain (signed root envelopes), oldest trusted first
 *   index-<size>.bin   the subject index for that tree size (subjects.ts)
 *   entries            the log's entries 0 … size−1, uint16-length-prefixed (tlog-tiles
 *                      bundle encoding, concatenated); bytes past the committed length are
 *                      leftovers of an interrupted sync
 *
 * A commit writes roots, entries and the index first (each durable), then replaces
 * checkpoint.json: a crash at any moment leaves the old commit or the new one, and files
 * the old commit does not name are ignored and cleaned up by the next sync.
 */

export const stateFiles = {
  commit: 'checkpoint.json',
  roots: 'roots',
  entries: 'entries',
  status: 'status.json',
  fork: 'fork.json',
  lock: 'lock',
  /** Images an operator lets run whatever their verdict (docker/allow.ts); not trust state. */
  allow: 'allow.json',
  allowLock: 'allow.lock',
} as const;

const indexName = (size: number) => `index-${size}.bin`;
const rootName = (version: number) => `${version}.json`;
const maxCommitBytes = 1024 * 1024;
const maxRootFileBytes = 2 * 1024 * 1024;
/** An index row is ~60 bytes plus its strings; 2^32 bytes is tens of millions of statements. */
const maxIndexBytes = 2 ** 32 - 1;

export interface RootFile {
  readonly version: number;
  readonly bytes: Uint8Array;
}

export interface TrustState {
  readonly dir: string;
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
  readonly range: CompactRange;
  readonly index: SubjectIndex;
  /** Committed length of the entries file. */
  readonly entriesBytes: number;
}

const commitSchema = z.strictObject({
  format: z.literal('vouch-state/v1'),
  rootVersion: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  checkpoint: z.string().max(maxNoteSize),
  clockFloor: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  range: z.array(z.string().max(64)).max(64),
  index: z.strictObject({ file: z.string().regex(/^index-[0-9]+\.bin$/), sha256: z.string() }),
  entries: z.strictObject({ bytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER) }),
});

function invalid(dir: string, message: string, cause?: unknown): VouchError {
  return new VouchError('STATE_INVALID', `state ${dir}: ${message}`, { cause });
}

/**
 * Loads and verifies the committed state: the root chain link by link, the checkpoint's
 * log signature and witness quorum under the current root, the compact range against the
 * checkpoint's root hash, the index file against its committed SHA-256, and the entries
 * file's length. Undefined when the device has no state yet.
 */
export async function loadState(dir: string): Promise<TrustState | undefined> {
  const commitBytes = await readFileCapped(join(dir, stateFiles.commit), maxCommitBytes, 'state');
  if (commitBytes === undefined) return undefined;
  const parsed = commitSchema.safeParse(parseJson(commitBytes, 'STATE_INVALID', 'state commit'));
  if (!parsed.success) throw invalid(dir, `checkpoint.json: ${describeIssues(parsed.error)}`);
  const commit = parsed.data;
  try {
    const chain = await readChain(dir, commit.rootVersion);
    let root: Root | undefined;
    for (const file of chain) root = verifyRoot(parseRootEnvelope(file.bytes), root);
    if (!root) throw invalid(dir, 'no trust root');
    const checkpoint = verifyCheckpoint(commit.checkpoint, root);
    const range = CompactRange.of(
      checkpoint.checkpoint.size,
      commit.range.map((hash) => decodeBase64(hash, 'compact range hash')),
    );
    if (Buffer.compare(range.root(), checkpoint.checkpoint.root) !== 0) {
      throw invalid(dir, 'the compact range does not give the checkpoint root');
    }
    if (commit.index.file !== indexName(checkpoint.checkpoint.size)) {
      throw invalid(
        dir,
        `index file ${commit.index.file} is not for size ${checkpoint.checkpoint.size}`,
      );
    }
    const indexBytes = await readFileCapped(join(dir, commit.index.file), maxIndexBytes, 'index');
    if (indexBytes === undefined) throw invalid(dir, `${commit.index.file} is missing`);
    if (createHash('sha256').update(indexBytes).digest('hex') !== commit.index.sha256) {
      throw invalid(dir, `${commit.index.file} does not match its committed digest`);
    }
    const entriesSize = await stat(fsPath(join(dir, stateFiles.entries))).then(
      (info) => info.size,
      () => 0,
    );
    if (entriesSize < commit.entries.bytes) {
      throw invalid(dir, `entries holds ${entriesSize} bytes, ${commit.entries.bytes} committed`);
    }
    return {
      dir,
      chain,
      root,
      checkpoint,
      note: commit.checkpoint,
      checkpointTime: checkpoint.time,
      // Never below the checkpoint's own signed time, even for a state committed by a vouch
      // that did not read the log's cosignature yet.
      clockFloor: Math.max(commit.clockFloor, checkpoint.time ?? 0),
      range,
      index: SubjectIndex.decode(indexBytes),
      entriesBytes: commit.entries.bytes,
    };
  } catch (error) {
    if (error instanceof VouchError && error.code !== 'STATE_INVALID' && error.code !== 'IO') {
      throw invalid(dir, error.message, error);
    }
    throw error;
  }
}

export interface VerifiedCheckpoint extends SignedCheckpoint {
  /**
   * The checkpoint's signed time in ms: the newest timestamp (c2sp.org/tlog-cosignature)
   * among the log's own cosignature and the root's witnesses' that verify. Undefined when
   * none is there: a log published before vouch signed its times, without witnesses.
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
  const own = verifyCosignatures(signed.note, [logCosigner(root.log.key)], 0);
  const times = [...own, ...witnessed].map((cosignature) => cosignature.timestamp * 1000);
  return { ...signed, time: times.length > 0 ? Math.max(...times) : undefined };
}

async function readChain(dir: string, upTo: number): Promise<RootFile[]> {
  const names = await readdir(fsPath(join(dir, stateFiles.roots))).catch(() => [] as string[]);
  const versions = names
    .map((name) => /^([1-9][0-9]{0,15})\.json$/.exec(name)?.[1])
    .filter((v): v is string => v !== undefined)
    .map(Number)
    .filter((v) => v <= upTo)
    .sort((a, b) => a - b);
  const first = versions[0];
  if (first === undefined || versions.at(-1) !== upTo || versions.length !== upTo - first + 1) {
    throw invalid(dir, `root chain up to v${upTo} is incomplete (have ${versions.join(', ')})`);
  }
  const chain: RootFile[] = [];
  for (const version of versions) {
    const path = join(dir, stateFiles.roots, rootName(version));
    const bytes = await readFileCapped(path, maxRootFileBytes, 'trust root');
    if (bytes === undefined) throw invalid(dir, `${path} is missing`);
    chain.push({ version, bytes });
  }
  return chain;
}

/** What a sync or an import hands over to be committed. */
export interface Commit {
  /** Root versions new to the state (or the whole chain, for a first commit), in order. */
  readonly newRoots: readonly RootFile[];
  readonly rootVersion: number;
  readonly note: string;
  readonly size: number;
  readonly clockFloor: number;
  readonly range: CompactRange;
  /** The index for `size`; undefined when the size did not change (the file is kept). */
  readonly index: SubjectIndex | undefined;
  /** The entries file's committed length after this commit. */
  readonly entriesBytes: number;
}

/**
 * The entries file, open for appending after the committed length. Anything past it is
 * from an interrupted sync and is cut off first.
 */
export class EntriesWriter {
  private constructor(
    private readonly handle: Awaited<ReturnType<typeof open>>,
    private position: number,
    private readonly committed: number,
  ) {}

  static async open(dir: string, committed: number): Promise<EntriesWriter> {
    const path = join(dir, stateFiles.entries);
    try {
      const handle = await open(fsPath(path), 'a+');
      await handle.truncate(committed);
      return new EntriesWriter(handle, committed, committed);
    } catch (error) {
      throw ioError('open', path, error);
    }
  }

  get length(): number {
    return this.position;
  }

  /** Appends entries already encoded, each with its uint16 big-endian length. */
  async append(encoded: Uint8Array): Promise<void> {
    await this.handle.write(encoded, 0, encoded.length, this.position);
    this.position += encoded.length;
  }

  /** Makes the appended bytes durable; call before the commit that covers them. */
  async sync(): Promise<void> {
    await this.handle.sync();
  }

  /** Closes; without a commit, cuts the file back to what is committed. */
  async close(committed: boolean): Promise<void> {
    if (!committed) await this.handle.truncate(this.committed).catch(() => {});
    await this.handle.close();
  }
}

/** Writes a commit: roots, then the index, then checkpoint.json; then removes what is stale. */
export async function commitState(dir: string, commit: Commit): Promise<void> {
  await makeDirectory(join(dir, stateFiles.roots));
  for (const { version, bytes } of commit.newRoots) {
    await writeFileDurably(join(dir, stateFiles.roots, rootName(version)), bytes);
  }
  const file = indexName(commit.size);
  let indexDigest: string;
  if (commit.index) {
    await writeFileDurably(join(dir, file), commit.index.bytes);
    indexDigest = createHash('sha256').update(commit.index.bytes).digest('hex');
  } else {
    const previous = await readCommitRecord(dir);
    if (previous?.index.file !== file) {
      throw new VouchError('INTERNAL', `no index for size ${commit.size} to keep`);
    }
    indexDigest = previous.index.sha256;
  }
  const record: z.input<typeof commitSchema> = {
    format: 'vouch-state/v1',
    rootVersion: commit.rootVersion,
    checkpoint: commit.note,
    clockFloor: commit.clockFloor,
    range: commit.range.hashes.map(encodeBase64),
    index: { file, sha256: indexDigest },
    entries: { bytes: commit.entriesBytes },
  };
  await writeFileDurably(join(dir, stateFiles.commit), `${JSON.stringify(record, null, 2)}\n`);
  await removeStale(dir);
}

async function readCommitRecord(dir: string): Promise<z.output<typeof commitSchema> | undefined> {
  const bytes = await readFileCapped(join(dir, stateFiles.commit), maxCommitBytes, 'state');
  if (bytes === undefined) return undefined;
  const parsed = commitSchema.safeParse(parseJson(bytes, 'STATE_INVALID', 'state commit'));
  return parsed.success ? parsed.data : undefined;
}

/**
 * Removes what the committed state does not name: index files of other sizes, roots above
 * the committed version, temp files of interrupted writes. Run under the sync lock.
 */
export async function removeStale(dir: string): Promise<void> {
  const commit = await readCommitRecord(dir);
  const names = await readdir(fsPath(dir)).catch(() => [] as string[]);
  // Without a readable commit, nothing but temp files is known to be stale: keep the rest
  // for the operator (loadState reports what is wrong).
  const temp = (name: string) => /^\..*\.tmp$/.test(name);
  if (!commit) {
    for (const name of names.filter(temp)) await unlink(fsPath(join(dir, name))).catch(() => {});
    return;
  }
  const rootNames = await readdir(fsPath(join(dir, stateFiles.roots))).catch(() => [] as string[]);
  const doomed = [
    ...names
      .filter(
        (name) => (/^index-[0-9]+\.bin$/.test(name) && name !== commit.index.file) || temp(name),
      )
      .map((name) => join(dir, name)),
    ...rootNames
      .filter((name) => {
        const version = /^([0-9]+)\.json$/.exec(name)?.[1];
        return (
          /^\..*\.tmp$/.test(name) ||
          (version !== undefined && Number(version) > (commit?.rootVersion ?? 0))
        );
      })
      .map((name) => join(dir, stateFiles.roots, name)),
  ];
  for (const path of doomed) await unlink(fsPath(path)).catch(() => {});
  if (doomed.length > 0) await syncDirectory(dir);
}
