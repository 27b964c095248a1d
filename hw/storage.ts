import { readlink, realpath } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { readOptional } from './sysroot';

/**
 * Which kind of storage a path lives on, because on a Pi the storage often limits hashing
 * more than the CPU does. The path's mount comes from proc/self/mountinfo (longest mount
 * point that contains it); the mount's device number leads to sys/dev/block/MAJ:MIN, a
 * symlink into sys/devices whose path names the bus (…/usbN/…, …/nvme/…, …/mmc_host/…).
 * Only link texts are read, so fixture trees need no real devices.
 */

export type StorageClass = 'sd' | 'emmc' | 'usb' | 'nvme' | 'other';

export interface Storage {
  /** The path as asked, resolved to an absolute path on the target system. */
  readonly path: string;
  /** Mount point holding it, or null when mountinfo has no entry for it. */
  readonly mount: string | null;
  /** Block device name (kernel name, e.g. "mmcblk0p8"), or null (tmpfs, overlay, …). */
  readonly device: string | null;
  readonly class: StorageClass;
}

interface Mount {
  readonly device: string;
  readonly point: string;
}

/**
 * Classifies each path. On the live system (`root` = "/") a path is first resolved through
 * symlinks; under a fixture root it is taken as a path on the target, without touching it.
 */
export async function readStorage(root: string, paths: readonly string[]): Promise<Storage[]> {
  const mounts = parseMountInfo((await readOptional(root, 'proc/self/mountinfo')) ?? '');
  return Promise.all(
    paths.map(async (path) => {
      const target =
        root === '/'
          ? await realpath(path).catch(() => posix.resolve(path))
          : posix.resolve('/', path);
      const mount = mountOf(mounts, target);
      if (!mount) return { path: target, mount: null, device: null, class: 'other' };
      const { device, class: kind } = await classify(root, mount.device);
      return { path: target, mount: mount.point, device, class: kind };
    }),
  );
}

/** proc(5) mountinfo: "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw". */
export function parseMountInfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const device = fields[2];
    const point = fields[4];
    if (device === undefined || point === undefined || !/^\d+:\d+$/.test(device)) continue;
    // Spaces, tabs, newlines and backslashes in mount points are octal escapes.
    const unescaped = point.replace(/\\([0-7]{3})/g, (_, octal: string) =>
      String.fromCharCode(Number.parseInt(octal, 8)),
    );
    mounts.push({ device, point: unescaped });
  }
  return mounts;
}

/** The mount that holds `path`: the longest containing mount point, the later on a tie. */
function mountOf(mounts: readonly Mount[], path: string): Mount | undefined {
  let best: Mount | undefined;
  for (const mount of mounts) {
    const inside =
      mount.point === '/' || path === mount.point || path.startsWith(`${mount.point}/`);
    if (inside && (!best || mount.point.length >= best.point.length)) best = mount;
  }
  return best;
}

async function classify(
  root: string,
  devno: string,
): Promise<{ device: string | null; class: StorageClass }> {
  // Major 0 is an anonymous device: tmpfs, overlay, proc, … — no block device behind it.
  if (devno.startsWith('0:')) return { device: null, class: 'other' };
  const links = join(root, 'sys/dev/block');
  const link = await readlink(join(links, devno)).catch(() => null);
  if (link === null) return { device: null, class: 'other' };
  const parts = link.split('/');
  const device = parts.at(-1) ?? null;
  if (parts.includes('nvme')) return { device, class: 'nvme' };
  if (parts.some((part) => /^usb\d+$/.test(part))) return { device, class: 'usb' };
  const at = parts.indexOf('block');
  if (device?.startsWith('mmcblk') && at > 0) {
    // The MMC card directory (…/mmc0:0001) holds `type`: "SD" or "MMC" (eMMC).
    const card = join(links, ...parts.slice(0, at));
    const type = (await readOptional(card, 'type'))?.trim();
    return { device, class: type === 'MMC' ? 'emmc' : 'sd' };
  }
  return { device, class: 'other' };
}
