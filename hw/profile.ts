import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { VouchError } from '../agent/core/errors';
import { type Arch, parseCpuInfo } from './cpuinfo';
import {
  decodeRevision,
  type RaspberryPiRevision,
  readThrottling,
  type Throttling,
} from './raspberrypi';
import { readStorage, type Storage } from './storage';
import { parseInteger, readOptional, readRequired } from './sysroot';

/**
 * What hashing on this device can expect: the board, its CPU, memory, storage and whether
 * it is hot or throttled. Read from `proc/` and `sys/` under a root directory only — no
 * library that guesses (systeminformation misdetects Pis on HA OS and inside containers),
 * so the same code reads the live system and the fixture trees in test/fixtures/sysroot.
 */
export interface HardwareProfile {
  /** Device-tree `model`, else DMI vendor and product, else the cpuinfo `Model` line. */
  readonly board: string | null;
  /** Device-tree `compatible`, most specific first ("raspberrypi,4-model-b", "brcm,bcm2711"). */
  readonly compatible: readonly string[];
  readonly raspberryPi: RaspberryPiRevision | null;
  readonly arch: Arch;
  readonly cpu: string | null;
  /** Cores we may use: the listed processors, fewer under a cgroup v2 CPU quota. */
  readonly cores: number;
  /** Bytes: MemTotal, or the cgroup v2 memory limit when lower. */
  readonly memTotal: number;
  /** Bytes: MemAvailable, or what is left under the cgroup v2 memory limit when lower. */
  readonly memAvailable: number;
  readonly sha2: boolean;
  readonly storage: readonly Storage[];
  /** °C of the hottest thermal zone, or null when there is none. */
  readonly temperature: number | null;
  /** The Pi firmware's throttling flags, or null when not a Pi (or not readable). */
  readonly throttling: Throttling | null;
}

export interface ProfileOptions {
  /** Directory holding `proc/` and `sys/`: "/" for this machine. */
  readonly root: string;
  /** Paths whose storage to classify (paths on the target system). */
  readonly paths: readonly string[];
}

export async function readProfile({ root, paths }: ProfileOptions): Promise<HardwareProfile> {
  const cpuinfo = parseCpuInfo(await readRequired(root, 'proc/cpuinfo'));
  if (cpuinfo.processors === 0) {
    throw new VouchError('BAD_DATA', `${join(root, 'proc/cpuinfo')} lists no processors`);
  }
  const cgroup = await cgroupDir(root);
  const [board, compatible, memory, quota, storage, temperature, throttling] = await Promise.all([
    readBoard(root),
    readOptional(root, 'proc/device-tree/compatible'),
    readMemory(root, cgroup),
    cpuQuota(cgroup),
    readStorage(root, paths),
    readTemperature(root),
    readThrottling(root),
  ]);
  const raspberryPi = cpuinfo.revision === null ? null : decodeRevision(cpuinfo.revision);
  return {
    board: board ?? cpuinfo.model,
    compatible: nulSeparated(compatible),
    raspberryPi,
    arch: cpuinfo.arch,
    cpu: cpuinfo.cpu,
    cores: Math.max(1, Math.min(cpuinfo.processors, quota ?? Number.POSITIVE_INFINITY)),
    ...memory,
    sha2: cpuinfo.sha2,
    storage,
    temperature,
    throttling,
  };
}

/** Device-tree strings are NUL-terminated (a list is NUL-separated). */
function nulSeparated(text: string | null): string[] {
  return (text ?? '').split('\0').filter(Boolean);
}

async function readBoard(root: string): Promise<string | null> {
  const model = nulSeparated(await readOptional(root, 'proc/device-tree/model'))[0];
  if (model) return model;
  // x86 boards have no device tree; firmware (SMBIOS) names them through DMI.
  const dmi = await Promise.all(
    ['sys/class/dmi/id/sys_vendor', 'sys/class/dmi/id/product_name'].map(async (file) =>
      (await readOptional(root, file))?.trim(),
    ),
  );
  const named = dmi.filter(Boolean);
  return named.length > 0 ? named.join(' ') : null;
}

/**
 * The process's cgroup v2 directory (proc/self/cgroup "0::/path"), where a container's or
 * service's memory and CPU limits live; null under cgroup v1 or without cgroups.
 */
async function cgroupDir(root: string): Promise<string | null> {
  const line = (await readOptional(root, 'proc/self/cgroup'))
    ?.split('\n')
    .find((entry) => entry.startsWith('0::'));
  return line === undefined ? null : join(root, 'sys/fs/cgroup', line.slice(3));
}

async function readMemory(
  root: string,
  cgroup: string | null,
): Promise<{ memTotal: number; memAvailable: number }> {
  const meminfo = await readRequired(root, 'proc/meminfo');
  // proc(5): "MemTotal:  3884512 kB" — kibibytes despite the unit's spelling.
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(meminfo);
    return match ? Number(match[1]) * 1024 : null;
  };
  const total = field('MemTotal');
  if (total === null) {
    throw new VouchError('BAD_DATA', `${join(root, 'proc/meminfo')} has no MemTotal`);
  }
  // MemAvailable exists since Linux 3.14; before that, free memory is the safe lower bound.
  const available = field('MemAvailable') ?? field('MemFree') ?? 0;
  // cgroup v2 memory.max is "max" without a limit, which parses as null.
  const limit = cgroup === null ? null : parseInteger(await readOptional(cgroup, 'memory.max'));
  const used = cgroup === null ? null : parseInteger(await readOptional(cgroup, 'memory.current'));
  if (limit === null || limit >= total) return { memTotal: total, memAvailable: available };
  return {
    memTotal: limit,
    memAvailable: Math.max(0, Math.min(available, limit - (used ?? 0))),
  };
}

/** cgroup v2 cpu.max "QUOTA PERIOD" (or "max PERIOD"): the cores it amounts to, rounded up. */
async function cpuQuota(cgroup: string | null): Promise<number | null> {
  const text = cgroup === null ? null : await readOptional(cgroup, 'cpu.max');
  const [quota, period] = (text ?? '')
    .trim()
    .split(' ')
    .map((n) => parseInteger(n));
  return quota && period ? Math.ceil(quota / period) : null;
}

/** The hottest sys/class/thermal zone, in °C (zones report millidegrees). */
async function readTemperature(root: string): Promise<number | null> {
  const base = join(root, 'sys/class/thermal');
  const zones = (await readdir(base).catch(() => [])).filter((name) =>
    name.startsWith('thermal_zone'),
  );
  const readings = await Promise.all(
    zones.map(async (zone) => parseInteger(await readOptional(base, `${zone}/temp`))),
  );
  const valid = readings.filter((value): value is number => value !== null);
  return valid.length === 0 ? null : Math.round(Math.max(...valid) / 100) / 10;
}
