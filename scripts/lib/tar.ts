import { pack } from 'tar-stream';

export interface ArchiveEntry {
  readonly name: string;
  readonly data?: Uint8Array;
  /** A symbolic link to this target instead of a file. */
  readonly link?: string;
  /** A hard link to this path in the archive instead of a file. */
  readonly hardlink?: string;
}

/** A tar of `entries` (files, symlinks), as bytes. */
export async function tarOf(entries: readonly ArchiveEntry[]): Promise<Buffer> {
  const packer = pack();
  for (const entry of entries) {
    if (entry.link !== undefined) {
      packer.entry({ name: entry.name, type: 'symlink', linkname: entry.link });
    } else if (entry.hardlink !== undefined) {
      packer.entry({ name: entry.name, type: 'link', linkname: entry.hardlink });
    } else {
      packer.entry({ name: entry.name, mtime: new Date(0) }, Buffer.from(entry.data ?? []));
    }
  }
  packer.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of packer) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
