import type { HardwareProfile } from './profile';
import type { StorageClass } from './storage';

/**
 * How to hash on this device: how many worker threads, how large a read, and how many bytes
 * may be read ahead of the hashers. SHA-256 of one stream is sequential, so extra workers
 * help only across files (or across the chunks of a chunked digest); they pay off while the
 * storage delivers faster than one core hashes. The rates below are what the rules assume;
 * hw/README.md "The plan" lists where each comes from.
 */
export interface HashPlan {
  readonly workers: number;
  /**
   * Bytes per read ahead of a file's hashing, and per message of a stream to a worker. (A
   * worker reading a file beside other jobs reads 64 KiB at a time: hash.worker.ts.)
   */
  readonly chunkSize: number;
  /**
   * Bytes of streams read but not yet hashed, at most (the pool's buffers). Files are read
   * by the workers into buffers of their own: two chunks and 64 KiB each, at most.
   */
  readonly inFlightBytes: number;
  /** Why, in words, one line per rule that applied. */
  readonly reasons: readonly string[];
}

const MB = 1e6;
const MiB = 2 ** 20;

/**
 * SHA-256 bytes per second on one core, through node:crypto (OpenSSL).
 * - x64 with SHA-NI: ≈ 1.6 GB/s (`openssl speed -bytes 1048576 sha256` on the development
 *   machine, AMD EPYC).
 * - x64 without: OpenSSL's SIMD code, ≈ 550 MB/s (the same machine with SHA-NI masked off:
 *   OPENSSL_ia32cap=":~0x20000000").
 * - ARMv8 with the SHA-2 Crypto Extensions (Pi 5, RK3588, S905X3): ≈ 1 GB/s.
 * - ARM without them (Pi 3's Cortex-A53, Pi 4's Cortex-A72): ≈ 140 MB/s on a Pi 4; a Pi 3
 *   is slower still, but there the SD card is the bottleneck either way.
 */
function hashRate(profile: HardwareProfile): number {
  const x86 = profile.arch === 'x64' || profile.arch === 'ia32';
  if (profile.sha2) return x86 ? 1600 * MB : 1000 * MB;
  return x86 ? 550 * MB : 140 * MB;
}

/**
 * Sequential read rates by storage class, the fast end of what boards running HA OS get:
 * SD cards ≈ 90 MB/s at best (Pi 5 SDR104; a Pi 3 manages ≈ 22), eMMC ≈ 250 MB/s (HS200),
 * a USB 3 SSD ≈ 350 MB/s (UAS), NVMe ≈ 900 MB/s (a Pi 5's single PCIe lane at gen 3).
 * "other" (tmpfs, overlay, network, virtual disks) is not assumed to limit anything.
 */
const readRate: Readonly<Record<StorageClass, number>> = {
  sd: 90 * MB,
  emmc: 250 * MB,
  usb: 350 * MB,
  nvme: 900 * MB,
  other: Number.POSITIVE_INFINITY,
};

const storageNames: Readonly<Record<StorageClass, string>> = {
  sd: 'SD card',
  emmc: 'eMMC',
  usb: 'USB disk',
  nvme: 'NVMe',
  other: 'other storage',
};

/** Above this the Pi firmware soon caps the clock (soft limit 80 °C on a Pi 4 and 5). */
const hotCelsius = 75;
const chunkSize = MiB;
/** Chunks per worker: one being hashed, one queued behind it, one being read, one spare. */
const chunksPerWorker = 4;
/** The in-flight bytes stay under this share of the available memory. */
const memoryShare = 1 / 64;

export function planHashing(profile: HardwareProfile): HashPlan {
  const reasons: string[] = [];
  const perCore = hashRate(profile);
  reasons.push(
    `${profile.sha2 ? 'SHA-2 instructions' : 'no SHA-2 instructions'} (${profile.arch}): ` +
      `~${rate(perCore)} per core`,
  );

  // The fastest storage among the paths decides: slower ones then simply leave workers idle.
  const storage = [...profile.storage].sort((a, b) => readRate[b.class] - readRate[a.class])[0];
  const storageClass = storage?.class ?? 'other';
  const storageRate = readRate[storageClass];
  const where = storage ? ` (${storage.path}${storage.device ? ` on ${storage.device}` : ''})` : '';
  reasons.push(
    Number.isFinite(storageRate)
      ? `${storageNames[storageClass]}${where}: reads ~${rate(storageRate)}`
      : `${storageNames[storageClass]}${where}: read rate unknown, assumed not to limit hashing`,
  );

  // Leave one core to the rest of the system (Home Assistant keeps running while we hash).
  const usable = profile.cores >= 4 ? profile.cores - 1 : profile.cores;
  const needed = Math.ceil(storageRate / perCore);
  let workers = Math.max(1, Math.min(usable, needed));
  const spare = usable < profile.cores ? `, one of ${profile.cores} cores left to the system` : '';
  reasons.push(
    needed <= usable
      ? `${plural(workers, 'worker')} to keep up with the storage${spare}`
      : `${plural(workers, 'worker')}, one per usable core${spare}`,
  );

  const hot = profile.temperature !== null && profile.temperature >= hotCelsius;
  const throttled = (profile.throttling?.now.length ?? 0) > 0;
  if (hot || throttled) {
    const before = workers;
    workers = Math.max(1, Math.floor(workers / 2));
    const why = [
      hot ? `${profile.temperature} °C ≥ ${hotCelsius} °C` : '',
      throttled ? `firmware reports ${profile.throttling?.now.join(', ')}` : '',
    ].filter(Boolean);
    reasons.push(`${why.join('; ')}: ${before} → ${plural(workers, 'worker')}`);
  }

  const budget = Math.floor((profile.memAvailable * memoryShare) / chunkSize) * chunkSize;
  const wanted = workers * chunksPerWorker * chunkSize;
  // Two chunks is the floor: one hashed while the next is read.
  const inFlightBytes = Math.max(2 * chunkSize, Math.min(wanted, budget));
  reasons.push(
    `${inFlightBytes / MiB} MiB in flight in ${chunkSize / MiB} MiB chunks ` +
      `(${chunksPerWorker} per worker, at most 1/${1 / memoryShare} of ` +
      `${Math.floor(profile.memAvailable / MiB)} MiB available)`,
  );
  return { workers, chunkSize, inFlightBytes, reasons };
}

/**
 * Threads at most for a sync's entry checks: each thread is a V8 isolate with its own heap and
 * a copy of each bundle it checks, and the main thread, which applies every bundle's results
 * in log order, soon limits the sync beyond that.
 */
const maxCheckers = 8;

/**
 * Threads that check a sync's entry bundles (agent/device/sync/checker.ts): the Ed25519
 * signature checks are most of a sync's CPU time and spread over every core we may use —
 * `profile.cores`, which counts a cgroup v2 CPU quota — up to {@link maxCheckers}.
 */
export function planChecking(profile: HardwareProfile): number {
  return Math.max(1, Math.min(profile.cores, maxCheckers));
}

function rate(bytesPerSecond: number): string {
  return `${Math.round(bytesPerSecond / MB)} MB/s`;
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}
