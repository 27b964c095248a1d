import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseInteger, readOptional } from './sysroot';

/**
 * Raspberry Pi specifics: the board revision code from /proc/cpuinfo and the firmware's
 * throttling flags. Both layouts are from the Raspberry Pi documentation
 * (computers/raspberry-pi/revision-codes.adoc, "New-style revision codes";
 * computers/os.adoc, `vcgencmd get_throttled`).
 */

export interface RaspberryPiRevision {
  /** The code as the kernel prints it, e.g. "c03114". */
  readonly code: string;
  /** Board type, e.g. "4B", "3B+", "CM4". */
  readonly type: string;
  /** Board revision, e.g. "1.4". */
  readonly revision: string;
  readonly processor: string;
  /** RAM in bytes, or null when the code says "other" (the firmware knows). */
  readonly memory: number | null;
  readonly manufacturer: string;
}

// Field values of a new-style code: NOQuuuWuFMMMCCCCPPPPTTTTTTTTRRRR.
const types: Readonly<Record<number, string>> = {
  0: 'A',
  1: 'B',
  2: 'A+',
  3: 'B+',
  4: '2B',
  5: 'Alpha',
  6: 'CM1',
  8: '3B',
  9: 'Zero',
  10: 'CM3',
  12: 'Zero W',
  13: '3B+',
  14: '3A+',
  16: 'CM3+',
  17: '4B',
  18: 'Zero 2 W',
  19: '400',
  20: 'CM4',
  21: 'CM4S',
  23: '5',
  24: 'CM5',
  25: '500',
  26: 'CM5 Lite',
  27: 'CM0',
};
const processors = ['BCM2835', 'BCM2836', 'BCM2837', 'BCM2711', 'BCM2712'];
const manufacturers = ['Sony UK', 'Egoman', 'Embest', 'Sony Japan', 'Embest', 'Stadium'];

/**
 * Decodes a new-style revision code (bit 23 set). Old-style codes (0002–0015, the first
 * Pi 1 boards, which cannot run HA OS) and anything that is not hex give null.
 */
export function decodeRevision(code: string): RaspberryPiRevision | null {
  const value = parseInteger(code, 16);
  if (value === null || value > 0xffffffff) return null;
  // The documentation says: always check bit 23, the new flag, before any other field.
  if (((value >>> 23) & 1) === 0) return null;
  const field = (shift: number, bits: number) => (value >>> shift) & (2 ** bits - 1);
  const type = field(4, 8);
  const memory = field(20, 3);
  return {
    code: code.trim().toLowerCase().replace(/^0x/, ''),
    type: types[type] ?? `type 0x${type.toString(16)}`,
    revision: `1.${field(0, 4)}`,
    processor: processors[field(12, 4)] ?? `processor ${field(12, 4)}`,
    // 0: 256 MB, doubling up to 6: 16 GB; 7 means "other".
    memory: memory === 7 ? null : 256 * 2 ** 20 * 2 ** memory,
    manufacturer: manufacturers[field(16, 4)] ?? `manufacturer ${field(16, 4)}`,
  };
}

export interface Throttling {
  /** The raw bit field, as `vcgencmd get_throttled` prints it ("0x50005"). */
  readonly raw: string;
  /** Conditions active now (bits 0–3). */
  readonly now: readonly ThrottleCondition[];
  /** Conditions that have occurred since boot (bits 16–19). */
  readonly sinceBoot: readonly ThrottleCondition[];
}

export type ThrottleCondition =
  | 'under-voltage'
  | 'frequency-capped'
  | 'throttled'
  | 'soft-temperature-limit';

const conditions: readonly ThrottleCondition[] = [
  'under-voltage',
  'frequency-capped',
  'throttled',
  'soft-temperature-limit',
];

export function decodeThrottled(value: number): Throttling {
  const set = (offset: number) => conditions.filter((_, bit) => (value >>> (offset + bit)) & 1);
  return { raw: `0x${value.toString(16)}`, now: set(0), sinceBoot: set(16) };
}

/**
 * The firmware driver's `get_throttled` attribute (printed as hex). Its directory differs by
 * board and kernel (soc/soc:firmware on a Pi 4, soc@107c000000/… on a Pi 5), so it is found
 * by a shallow search of sys/devices/platform that does not follow symlinks.
 */
export async function readThrottling(root: string): Promise<Throttling | null> {
  const file = await findFile(join(root, 'sys/devices/platform'), 'get_throttled', 3);
  if (file === null) return null;
  const value = parseInteger(await readOptional(file, ''), 16);
  return value === null || value > 0xffffffff ? null : decodeThrottled(value);
}

async function findFile(dir: string, name: string, depth: number): Promise<string | null> {
  let level = [dir];
  for (let d = 0; d <= depth && level.length > 0; d++) {
    const next: string[] = [];
    for (const current of level) {
      const entries = await readdir(current, { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (entry.name === name && entry.isFile()) return join(current, name);
        if (entry.isDirectory()) next.push(join(current, entry.name));
      }
    }
    level = next;
  }
  return null;
}
