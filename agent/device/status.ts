import { encodeBase64 } from '../core/encoding';
import { formatUtcTime } from '../core/time';
import { hasSignedTime, loadState, type TrustState } from './store/state';
import {
  type ForkEvidence,
  type MirrorResult,
  readForkEvidence,
  readSyncStatus,
  type SyncAttempt,
  type SyncStatus,
} from './store/status';

/** Trusted time (ms): the clock, but never earlier than the newest time the state has seen. */
export function trustedNow(state: TrustState | undefined, clock: () => number = Date.now): number {
  return Math.max(clock(), state?.clockFloor ?? 0);
}

/** Freshness (docs/security.md "The device state"): how old the device's view of the log is. */
export interface Freshness {
  /** Whether the data is older than maxAge (or there is none). */
  readonly stale: boolean;
  /** The time freshness is measured from (ms), when there is one. */
  readonly since: number | undefined;
}

/**
 * A device is fresh while its checkpoint's signed time (the log's own cosignature, or a
 * quorum of its witnesses') is younger than `maxAge`. Only a signed time can say how old a
 * checkpoint is: a mirror replaying an old checkpoint (a freeze attack) or an old snapshot
 * imported on an air-gapped device brings its old time along and leaves the device stale.
 *
 * Only on a log that never gave this device a signed time (a publisher older than signed
 * times, without witnesses) is a checkpoint without one fresh since `lastMirrorSync`, the
 * last successful sync from a mirror on the network — trusting the mirror to serve the
 * latest checkpoint, as nothing else can tell. An import or a file:// mirror never counts:
 * a snapshot or a copied directory says nothing about when it was made.
 */
export function freshness(
  state: TrustState | undefined,
  lastMirrorSync: number | undefined,
  now: number,
  maxAge: number,
): Freshness {
  if (!state) return { stale: true, since: undefined };
  const since = state.checkpointTime ?? (hasSignedTime(state) ? undefined : lastMirrorSync);
  return { stale: since === undefined || now - since > maxAge, since };
}

export interface DeviceStatus {
  readonly stateDir: string;
  readonly origin: string | null;
  readonly size: number;
  /** Base64 RFC 6962 root hash of the verified tree. */
  readonly rootHash: string | null;
  readonly rootVersion: number | null;
  /** RFC 3339: the checkpoint's signed time (freshness), when it has one. */
  readonly checkpointTime: string | null;
  /** Seconds from the checkpoint's signed time to trusted now, when it has one. */
  readonly checkpointAgeSeconds: number | null;
  readonly stale: boolean;
  /**
   * RFC 3339: what freshness is measured from: the signed time, else (on a log that never
   * gave one) the last sync from a network mirror.
   */
  readonly freshSince: string | null;
  readonly maxAgeSeconds: number;
  readonly clockFloor: string | null;
  /** Trusted now (RFC 3339). */
  readonly now: string;
  readonly records: number;
  readonly lastAttempt: SyncAttempt | null;
  readonly lastSuccess: SyncAttempt | null;
  readonly mirrors: readonly MirrorResult[];
  /** Present only when a fork was detected and not yet cleared. */
  readonly fork?: readonly ForkEvidence[];
}

/** What the agent holds (trust.ts): the state, and the reports as last read. */
export interface HeldStatus {
  readonly state: TrustState | undefined;
  /** Undefined: not readable when last read, so read here. */
  readonly sync: SyncStatus | undefined;
  readonly fork: readonly ForkEvidence[];
}

/**
 * `vouch status`: the verified state, its freshness, the sync history and any fork. `held`:
 * what the caller holds (the agent), else it is all read from `dir`.
 */
export async function deviceStatus(
  dir: string,
  maxAge: number,
  clock: () => number = Date.now,
  held?: HeldStatus,
): Promise<DeviceStatus> {
  const state = held ? held.state : await loadState(dir);
  const sync = held?.sync ?? (await readSyncStatus(dir));
  const fork = held ? held.fork : await readForkEvidence(dir);
  const now = trustedNow(state, clock);
  const fresh = freshness(state, sync.lastMirrorSuccess?.at, now, maxAge);
  const signedAt = state?.checkpointTime;
  const checkpoint = state?.checkpoint.checkpoint;
  const time = (ms: number | undefined) => (ms === undefined ? null : formatUtcTime(ms));
  return {
    stateDir: dir,
    origin: checkpoint?.origin ?? null,
    size: checkpoint?.size ?? 0,
    rootHash: checkpoint ? encodeBase64(checkpoint.root) : null,
    rootVersion: state?.root.version ?? null,
    checkpointTime: time(signedAt),
    checkpointAgeSeconds: signedAt === undefined ? null : Math.floor((now - signedAt) / 1000),
    stale: fresh.stale,
    freshSince: time(fresh.since),
    maxAgeSeconds: Math.floor(maxAge / 1000),
    clockFloor: time(state?.clockFloor || undefined),
    now: formatUtcTime(now),
    records: state?.index.rows ?? 0,
    lastAttempt: sync.lastAttempt ?? null,
    lastSuccess: sync.lastSuccess ?? null,
    mirrors: sync.mirrors,
    ...(fork.length > 0 ? { fork } : {}),
  };
}
