import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import Docker from 'dockerode';
import { pack } from 'tar-stream';
import { type Daemon, startDaemon } from './daemon';
import { requireBinary, waitFor } from './services';

export interface Dockerd {
  /** For clients that honour DOCKER_HOST, e.g. `docker` or the agent. */
  readonly dockerHost: string;
  readonly socketPath: string;
  readonly docker: Docker;
  stop(): Promise<void>;
  /** Stops dockerd and starts it again on the same socket and data (for reconnect tests). */
  restart(): Promise<void>;
}

export interface DockerdOptions {
  /** vfs (the default) works in any container; overlay2 needs overlay mounts. */
  readonly storageDriver?: 'vfs' | 'overlay2';
}

/**
 * A real dockerd of our own: data, exec state and API socket under a temp dir, the vfs
 * storage driver unless asked for another, and no networking (no iptables, no bridge).
 */
export async function startDockerd(options: DockerdOptions = {}): Promise<Dockerd> {
  const binary = requireBinary('docker');
  if (process.getuid?.() !== 0) throw new Error('dockerd needs root: run the tests as root');
  // Short path: a unix socket path must fit in 108 bytes.
  const dir = await mkdtemp('/tmp/vouch-dockerd-');
  const socketPath = join(dir, 'docker.sock');
  const docker = new Docker({ socketPath });
  let daemon: Daemon | undefined;
  const launch = async () => {
    daemon = startDaemon(binary, [
      `--data-root=${join(dir, 'data')}`,
      `--exec-root=${join(dir, 'exec')}`,
      `--pidfile=${join(dir, 'docker.pid')}`,
      `--host=unix://${socketPath}`,
      `--storage-driver=${options.storageDriver ?? 'vfs'}`,
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
    ]);
    const started = daemon;
    await waitFor(
      `dockerd API on ${socketPath}`,
      async () => (await docker.ping()).toString() === 'OK',
      60_000,
      () => started.exitError(),
    );
  };
  try {
    await launch();
  } catch (error) {
    await daemon?.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dockerHost: `unix://${socketPath}`,
    socketPath,
    docker,
    async stop() {
      await daemon?.stop();
      await rm(dir, { recursive: true, force: true });
    },
    async restart() {
      await daemon?.stop();
      await launch();
    },
  };
}

/** A file for an image: its content, or its content and mode (e.g. 0o755 for a program). */
export type ImageFile =
  | string
  | Uint8Array
  | { readonly content: string | Uint8Array; readonly mode: number };

export type ImageFiles = Readonly<Record<string, ImageFile>>;

/**
 * Builds an image `FROM scratch` holding `files` (path in the image → content) and tags
 * it; no registry is involved. A list of file sets gives one layer per set, in order.
 * Returns the image ID (`sha256:` + config digest).
 */
export async function buildScratchImage(
  docker: Docker,
  tag: string,
  files: ImageFiles | readonly ImageFiles[],
): Promise<string> {
  const layers: readonly ImageFiles[] = Array.isArray(files) ? files : [files as ImageFiles];
  const context = pack();
  const copies = layers.map((_, i) => `COPY layer${i}/ /\n`).join('');
  context.entry({ name: 'Dockerfile' }, `FROM scratch\n${copies}`);
  for (const [i, layer] of layers.entries()) {
    for (const [path, file] of Object.entries(layer)) {
      const { content, mode } =
        typeof file === 'string' || file instanceof Uint8Array
          ? { content: file, mode: 0o644 }
          : file;
      context.entry({ name: join(`layer${i}`, path), mode }, Buffer.from(content));
    }
  }
  context.finalize();
  // tar-stream packs are streamx streams; dockerode wants a Node stream.
  const stream = await docker.buildImage(Readable.from(context), { t: tag });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (error: Error | null, events: Array<{ error?: string }>) => {
        const failed = error ?? events.find((event) => event.error)?.error;
        if (failed) reject(failed instanceof Error ? failed : new Error(`docker build: ${failed}`));
        else resolve();
      },
    );
  });
  return (await docker.getImage(tag).inspect()).Id;
}

/**
 * Where layer `index` of an image is kept (vfs or overlay2 storage): the chain ID of the
 * layers up to it names its layerdb entry (OCI image spec, config.md "Layer ChainID"),
 * which holds its tar-split record and the cache ID of its directory (for overlay2, the
 * layer's own files are in that directory's `diff`).
 */
export async function layerStorage(docker: Docker, ref: string, index: number) {
  const info = await docker.info();
  const root = info.DockerRootDir as string;
  const driver = info.Driver as string;
  const diffIds = (await docker.getImage(ref).inspect()).RootFS.Layers ?? [];
  let chain = diffIds[0] as string;
  for (const diffId of diffIds.slice(1, index + 1)) {
    chain = `sha256:${createHash('sha256').update(`${chain} ${diffId}`).digest('hex')}`;
  }
  const record = join(root, 'image', driver, 'layerdb/sha256', chain.slice(7));
  const cacheId = (await readFile(join(record, 'cache-id'), 'utf8')).trim();
  return {
    diffId: diffIds[index] as string,
    tarSplit: join(record, 'tar-split.json.gz'),
    dir: driver === 'vfs' ? join(root, 'vfs/dir', cacheId) : join(root, driver, cacheId, 'diff'),
  };
}

/**
 * Edits one tar header (a digit of its mtime) in a layer's tar-split record (`tarSplit`, from
 * layerStorage): no file changes, the tar dockerd rebuilds does, so it no longer hashes to
 * the layer's diff_id. Returns the record as it was, to put back.
 */
export async function alterTarSplitHeader(tarSplit: string): Promise<Buffer> {
  const original = await readFile(tarSplit);
  const lines = gunzipSync(original).toString().split('\n');
  const header = lines.findIndex((line) => line.includes('"type":2'));
  const segment = JSON.parse(lines[header] as string) as { payload: string };
  const bytes = Buffer.from(segment.payload, 'base64');
  bytes[136] = bytes[136] === 0x30 ? 0x31 : 0x30; // a digit of the mtime field
  lines[header] = JSON.stringify({ ...segment, payload: bytes.toString('base64') });
  await writeFile(tarSplit, gzipSync(lines.join('\n')));
  return original;
}

/** `docker load` of an image archive (oci.ts); throws with what dockerd said on failure. */
export async function loadArchive(docker: Docker, archive: Buffer): Promise<void> {
  const stream = await docker.loadImage(Readable.from([archive]));
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString();
  if (text.includes('"error"')) throw new Error(`docker load: ${text}`);
}
