import { encodeBase64 } from '../core/encoding';
import { formatUtcTime } from '../core/time';
import { loadState, type TrustState } from './store/state';
import {
  type ForkEvidence,
  type MirrorResult,
  readForkEvidence,
  readSyncStatus,
  type SyncAttempt,
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
 * A device is fresh while its checkpoint is younger than `maxAge`: the checkpoint's
 * witness-cosigned time when the root lists witnesses (so a mirror replaying an old
 * checkpoint cannot keep a device fresh: a freeze attack), else the last successful sync.
 */
export function freshness(
  state: TrustState | undefined,
  lastSuccess: number | undefined,
  now: number,
  maxAge: number,
): Freshness {
  if (!state) return { stale: true, since: undefined };
  const since = state.checkpointTime ?? lastSuccess;
  return { stale: since === undefined || now - since > maxAge, since };
}

export interface DeviceStatus {
  readonly stateDir: string;
  readonly origin: string | null;
  readonly size: number;
  /** Base64 RFC 6962 root hash of the verified tree. */
  readonly rootHash: string | null;
  readonly rootVersion: number | null;
  /** RFC 3339: the checkpoint's newest witness cosignature time, when cosigned. */
  readonly checkpointTime: string | null;
  readonly stale: boolean;
  /** RFC 3339: what freshness is measured from (checkpoint time, else last success). */
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

/** `vouch status`: the verified state, its freshness, the sync history and any fork. */
export async function deviceStatus(
  dir: string,
  maxAge: number,
  clock: () => number = Date.now,
): Promise<DeviceStatus> {
  const state = await loadState(dir);
  const sync = await readSyncStatus(dir);
  const fork = await readForkEvidence(dir);
  const now = trustedNow(state, clock);
  const fresh = freshness(state, sync.lastSuccess?.at, now, maxAge);
  const checkpoint = state?.checkpoint.checkpoint;
  const time = (ms: number | undefined) => (ms === undefined ? null : formatUtcTime(ms));
  return {
    stateDir: dir,
    origin: checkpoint?.origin ?? null,
    size: checkpoint?.size ?? 0,
    rootHash: checkpoint ? encodeBase64(checkpoint.root) : null,
    rootVersion: state?.root.version ?? null,
    checkpointTime: time(state?.checkpointTime),
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
