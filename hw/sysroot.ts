import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { VouchError } from '../agent/core/errors';

/**
 * Every reader in hw/ takes the root directory it reads `proc/` and `sys/` under: `/` on the
 * device, a fixture tree in tests, a copied-off tree when diagnosing someone else's board.
 */

/** procfs and sysfs files are small; anything larger is not what we expect to read. */
const maxBytes = 4 * 2 ** 20;
const firstReadBytes = 16 * 1024;

/** The text of `rel` under `root`, or null when it is absent or unreadable (optional facts). */
export async function readOptional(root: string, rel: string): Promise<string | null> {
  try {
    return await readCapped(join(root, rel));
  } catch {
    return null;
  }
}

/** The text of `rel` under `root`; a missing file is an IO error naming it. */
export async function readRequired(root: string, rel: string): Promise<string> {
  const path = join(root, rel);
  try {
    return await readCapped(path);
  } catch (error) {
    if (error instanceof VouchError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new VouchError('IO', `cannot read ${path}: ${reason}`, { cause: error });
  }
}

/**
 * At most `maxBytes` of `path`, read until its end: procfs and sysfs files say size 0, so
 * the count is the cap, never the size. Non-blocking, so that a FIFO in a copied tree reads
 * as empty rather than waiting for a writer; a device (/dev/zero linked in) ends at the cap.
 */
async function readCapped(path: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    // Most are under a page; a buffer twice as large each time it fills, up to the cap.
    let buffer = Buffer.allocUnsafe(firstReadBytes);
    let total = 0;
    for (;;) {
      if (total === buffer.length) {
        const larger = Buffer.allocUnsafe(Math.min(buffer.length * 2, maxBytes + 1));
        buffer.copy(larger);
        buffer = larger;
      }
      const { bytesRead } = await handle.read(buffer, total, buffer.length - total, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) {
        throw new VouchError('BAD_DATA', `${path} is larger than ${maxBytes} bytes`);
      }
    }
    return buffer.toString('utf8', 0, total);
  } finally {
    await handle.close();
  }
}

/** An integer from a sysfs/procfs value (decimal, or hex with an optional 0x), or null. */
export function parseInteger(text: string | null, radix = 10): number | null {
  if (text === null) return null;
  const trimmed = text.trim();
  const pattern = radix === 16 ? /^(0x)?[0-9a-f]+$/i : /^-?[0-9]+$/;
  if (!pattern.test(trimmed)) return null;
  const value = Number.parseInt(trimmed, radix);
  return Number.isSafeInteger(value) ? value : null;
}
