import { authorizeLoggedEnvelope } from '../../core/authorize';
import { toHex } from '../../core/encoding';
import { asVouchError } from '../../core/errors';
import type { PublicKey } from '../../core/keys';
import { hashLeaf, hashSize } from '../../core/merkle';
import type { Root } from '../../core/root';
import { merkleAlgorithm } from '../../core/statement';
import { decodeEntryBundle, fullWidth, type TileId } from '../../core/tiles';
import { type RecordBatch, RecordBatchWriter } from '../store/subjects';

/**
 * Checks the entries of one entry bundle for the index: each entry's RFC 6962 leaf hash
 * (compared with the tiles and fed to the compact range by the caller), and each
 * statement's signature, signer, scope and validity window under the current root; each
 * subject gives a record per digest it names (sha256, and merkle-sha256-1mib when given). An
 * entry that is not a valid statement under this root is logged but not indexed, and
 * reported. Pure CPU work: runs on a worker thread (verify.worker.ts) or inline for small
 * syncs. A bundle travels as its bytes (one copy per message, no per-entry objects).
 */

export interface BundleRun {
  /** The level-0 tile the bundle belongs to (c2sp.org/tlog-tiles). */
  readonly tile: TileId;
  /** The entry bundle as served, already checked by decodeEntryBundle. */
  readonly bytes: Uint8Array;
  /** The first entry of the bundle to hash (those before are in no range being built). */
  readonly from: number;
  /** The first entry whose statement is checked (those before are already indexed). */
  readonly checkFrom: number;
}

export interface SkippedEntry {
  readonly logIndex: number;
  readonly code: string;
  readonly reason: string;
}

export interface CheckedEntries {
  /** Leaf hashes of the entries from `from` on, 32 bytes each, in order. */
  readonly leafHashes: Uint8Array;
  /** The index records of the valid statements (one per subject). */
  readonly records: RecordBatch;
  readonly skipped: SkippedEntry[];
}

/** Hex spellings of the root's keys, made once: a bundle has hundreds of statements by one key. */
const hexKeys = new WeakMap<PublicKey, string>();

function hexOf(key: PublicKey): string {
  let hex = hexKeys.get(key);
  if (hex === undefined) {
    hex = toHex(key.raw);
    hexKeys.set(key, hex);
  }
  return hex;
}

export function checkEntries(root: Root, run: BundleRun): CheckedEntries {
  const entries = decodeEntryBundle(run.bytes, run.tile);
  const firstIndex = run.tile.index * fullWidth;
  const leafHashes = new Uint8Array((entries.length - run.from) * hashSize);
  const records = new RecordBatchWriter();
  const skipped: SkippedEntry[] = [];
  for (let i = run.from; i < entries.length; i++) {
    const entry = entries[i] as Uint8Array;
    leafHashes.set(hashLeaf(entry), (i - run.from) * hashSize);
    if (i < run.checkFrom) continue;
    const logIndex = firstIndex + i;
    try {
      const { statement, signer, keys, issuedAtMs } = authorizeLoggedEnvelope(root, entry);
      const key = hexOf(keys[0] as PublicKey);
      for (const subject of statement.subjects) {
        const record = {
          logIndex,
          name: subject.name,
          status: statement.status,
          signer,
          issuedAtMs,
          ...(statement.reason !== undefined ? { reason: statement.reason } : {}),
          key,
        };
        records.add({ digest: subject.sha256, algorithm: 'sha256', ...record });
        // A chunked digest gets a row of its own kind (store/subjects.ts: never confused).
        if (subject.merkle !== undefined) {
          records.add({ digest: subject.merkle, algorithm: merkleAlgorithm, ...record });
        }
      }
    } catch (error) {
      const failure = asVouchError(error);
      if (failure.code === 'INTERNAL') throw error;
      skipped.push({ logIndex, code: failure.code, reason: failure.message });
    }
  }
  return { leafHashes, records: records.finish(), skipped };
}
