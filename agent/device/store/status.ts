import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { VouchError } from '../../core/errors';
import { describeIssues, parseJson } from '../../core/json';
import { fsPath, readFileCapped, syncDirectory, writeFileDurably } from '../../files';
import { sealIntact, sealRecord } from './sealed';
import { stateFiles } from './state';

/**
 * What the device remembers about its syncs (status.json) and the evidence of any fork
 * (fork.json). Neither is trust data: status.json only reports, and a damaged one is
 * replaced; fork.json is kept until an operator clears it (`vouch fork clear`).
 */

const maxFileBytes = 4 * 1024 * 1024;
const historyLength = 20;
const maxEvidence = 16;

const errorSchema = z.strictObject({ code: z.string().max(64), message: z.string().max(4096) });

const attemptSchema = z.strictObject({
  /** ms since the epoch (the trusted time: the clock, not below the clock floor). */
  at: z.number(),
  ok: z.boolean(),
  /** A sync from mirrors or a snapshot import (absent in files written before it was kept). */
  kind: z.enum(['sync', 'import']).optional(),
  /** A mirror URL or a snapshot path. */
  source: z.string().max(4096),
  fromSize: z.number().int().min(0),
  toSize: z.number().int().min(0).optional(),
  /** Entries added to the state. */
  added: z.number().int().min(0).optional(),
  /** Entries logged but not indexed (not a valid statement under the current root). */
  skipped: z.number().int().min(0).optional(),
  error: errorSchema.optional(),
});

const mirrorSchema = z.strictObject({
  url: z.string().max(4096),
  at: z.number(),
  ok: z.boolean(),
  size: z.number().int().min(0).optional(),
  error: errorSchema.optional(),
});

const statusSchema = z.strictObject({
  lastAttempt: attemptSchema.optional(),
  lastSuccess: attemptSchema.optional(),
  /**
   * The last successful sync from a mirror on the network (http:// or https://). Freshness
   * counts from it only on a log that never gave a signed time (device/status.ts
   * freshness); an import or a file:// mirror never counts.
   */
  lastMirrorSuccess: attemptSchema.optional(),
  /** The latest result of each mirror tried, in the order last tried. */
  mirrors: z.array(mirrorSchema).max(64),
  history: z.array(attemptSchema).max(historyLength),
});

const evidenceSchema = z.strictObject({
  detectedAt: z.number(),
  source: z.string().max(4096),
  reason: z.string().max(4096),
  /** The device's verified checkpoint note, and the conflicting one, both log-signed. */
  local: z.string().max(256 * 1024),
  remote: z.string().max(256 * 1024),
  /** For a larger tree: the consistency proof (base64 hashes) that failed, from the mirror. */
  proof: z.array(z.string().max(64)).max(128).optional(),
});

const evidenceList = z.array(evidenceSchema).max(maxEvidence);
/** fork.json: sealed (sealed.ts), so that damage to the evidence is seen. */
const evidenceFile = z.strictObject({ evidence: evidenceList, recordSha256: z.string() });

export type SyncAttempt = z.infer<typeof attemptSchema>;
export type MirrorResult = z.infer<typeof mirrorSchema>;
export type SyncStatus = z.infer<typeof statusSchema>;
export type ForkEvidence = z.infer<typeof evidenceSchema>;

const emptyStatus: SyncStatus = { mirrors: [], history: [] };

export async function readSyncStatus(dir: string): Promise<SyncStatus> {
  try {
    const bytes = await readFileCapped(join(dir, stateFiles.status), maxFileBytes, 'sync status');
    if (bytes === undefined) return emptyStatus;
    return statusSchema.parse(parseJson(bytes, 'STATE_INVALID', 'status.json'));
  } catch (error) {
    // Reports only: a damaged file (one over the cap too) is started afresh rather than
    // blocking syncs and verdicts; a file that cannot be read is an error that says so.
    if (error instanceof VouchError && error.kind === 'io') throw error;
    return emptyStatus;
  }
}

/** Records one sync attempt and the mirrors' results in it. Run under the sync lock. */
export async function recordAttempt(
  dir: string,
  attempt: SyncAttempt,
  mirrors: readonly MirrorResult[],
): Promise<SyncStatus> {
  const previous = await readSyncStatus(dir);
  const tried = new Set(mirrors.map((mirror) => mirror.url));
  const lastSuccess = attempt.ok ? attempt : previous.lastSuccess;
  // Only a mirror on the network: a file:// one (a USB stick, a copied directory) says no
  // more than a snapshot about when it was made (device/status.ts freshness).
  const fromNetwork =
    attempt.ok &&
    attempt.kind === 'sync' &&
    mirrors.some((mirror) => mirror.ok && !mirror.url.startsWith('file://'));
  const lastMirrorSuccess = fromNetwork ? attempt : previous.lastMirrorSuccess;
  const status: SyncStatus = {
    lastAttempt: attempt,
    ...(lastSuccess ? { lastSuccess } : {}),
    ...(lastMirrorSuccess ? { lastMirrorSuccess } : {}),
    mirrors: [...mirrors, ...previous.mirrors.filter((mirror) => !tried.has(mirror.url))].slice(
      0,
      64,
    ),
    history: [attempt, ...previous.history].slice(0, historyLength),
  };
  await writeFileDurably(join(dir, stateFiles.status), `${JSON.stringify(status, null, 2)}\n`);
  return status;
}

export async function readForkEvidence(dir: string): Promise<ForkEvidence[]> {
  const path = join(dir, stateFiles.fork);
  const bytes = await readFileCapped(path, maxFileBytes, 'fork evidence');
  if (bytes === undefined) return [];
  let problem: string;
  try {
    const json = parseJson(bytes, 'STATE_INVALID', stateFiles.fork);
    // Written as a bare array before the file was sealed: read as it is.
    const parsed = Array.isArray(json)
      ? evidenceList.safeParse(json)
      : evidenceFile.safeParse(json);
    if (!parsed.success) problem = describeIssues(parsed.error);
    else if (Array.isArray(parsed.data)) return parsed.data;
    else if (sealIntact(json)) return parsed.data.evidence;
    else problem = 'does not match its own digest (recordSha256)';
  } catch (error) {
    problem = (error as Error).message;
  }
  // Evidence must never vanish silently: a damaged file is reported, not dropped.
  throw new VouchError(
    'STATE_INVALID',
    `${path} is damaged (${problem}): it records a fork this device saw; keep a copy of it ` +
      'to inspect, then run vouch fork clear',
  );
}

/** Saves fork evidence (once per conflicting checkpoint). Run under the sync lock. */
export async function addForkEvidence(dir: string, evidence: ForkEvidence): Promise<void> {
  const known = await readForkEvidence(dir);
  if (known.some((item) => item.local === evidence.local && item.remote === evidence.remote)) {
    return;
  }
  const all = [...known, evidence].slice(-maxEvidence);
  await writeFileDurably(join(dir, stateFiles.fork), sealRecord({ evidence: all }));
}

/**
 * Removes the fork evidence (an operator's decision), damaged or not; returns how many items
 * it held, or 'damaged'.
 */
export async function clearForkEvidence(dir: string): Promise<number | 'damaged'> {
  const known = await readForkEvidence(dir).catch((error: unknown) => {
    if (error instanceof VouchError && error.code === 'STATE_INVALID') return 'damaged' as const;
    throw error;
  });
  if (known !== 'damaged' && known.length === 0) return 0;
  await unlink(fsPath(join(dir, stateFiles.fork)));
  await syncDirectory(dir);
  return known === 'damaged' ? known : known.length;
}
