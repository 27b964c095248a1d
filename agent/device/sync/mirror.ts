import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { VouchError } from '../../core/errors';
import { readFileCapped } from '../../files';

/**
 * A mirror of the log: a static c2sp.org/tlog-tiles directory (`checkpoint`, `tile/…`,
 * `tile/entries/…`, and `roots/<V>.json` for root updates) over http(s):// or on a file
 * system (file://: a USB stick, a publisher's public/ directory). Every read has a size
 * cap enforced while the bytes arrive, and every HTTP request a timeout covering its body.
 */
export interface Mirror {
  readonly url: string;
  /** The bytes at `path` under the mirror, or undefined when it has none (404, no file). */
  get(path: string, maxBytes: number): Promise<Uint8Array | undefined>;
}

export interface MirrorOptions {
  /** Per request, body included (ms). */
  readonly timeoutMs: number;
}

export function openMirror(url: string, options: MirrorOptions): Mirror {
  if (url.startsWith('file://')) return fileMirror(url);
  if (url.startsWith('http://') || url.startsWith('https://')) return httpMirror(url, options);
  throw new VouchError('USAGE', `mirror ${url}: expected an http://, https:// or file:// URL`);
}

function unavailable(url: string, message: string, cause?: unknown): VouchError {
  return new VouchError('UNAVAILABLE', `mirror ${url}: ${message}`, { cause });
}

function tooLarge(url: string, path: string, maxBytes: number): VouchError {
  return new VouchError('PAYLOAD_TOO_LARGE', `mirror ${url}: ${path} is over ${maxBytes} bytes`);
}

function fileMirror(url: string): Mirror {
  let base: string;
  try {
    base = fileURLToPath(url);
  } catch (error) {
    throw new VouchError('USAGE', `mirror ${url}: not a file URL`, { cause: error });
  }
  return {
    url,
    async get(path, maxBytes) {
      try {
        return await readFileCapped(join(base, path), maxBytes, path);
      } catch (error) {
        if (error instanceof VouchError && error.code === 'PAYLOAD_TOO_LARGE') {
          throw tooLarge(url, path, maxBytes);
        }
        throw unavailable(url, (error as Error).message, error);
      }
    },
  };
}

function httpMirror(url: string, { timeoutMs }: MirrorOptions): Mirror {
  const base = url.endsWith('/') ? url : `${url}/`;
  return {
    url,
    async get(path, maxBytes) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), timeoutMs);
      try {
        const response = await fetch(new URL(path, base), { signal: controller.signal });
        if (response.status === 404 || response.status === 410) {
          await response.body?.cancel();
          return undefined;
        }
        if (response.status !== 200) {
          await response.body?.cancel();
          throw unavailable(url, `HTTP ${response.status} for ${path}`);
        }
        const declared = Number(response.headers.get('content-length') ?? Number.NaN);
        if (declared > maxBytes) {
          controller.abort();
          throw tooLarge(url, path, maxBytes);
        }
        const chunks: Uint8Array[] = [];
        let total = 0;
        for await (const chunk of response.body ?? []) {
          total += chunk.length;
          if (total > maxBytes) {
            controller.abort();
            throw tooLarge(url, path, maxBytes);
          }
          chunks.push(chunk);
        }
        const bytes = Buffer.concat(chunks);
        return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      } catch (error) {
        if (error instanceof VouchError) throw error;
        if (controller.signal.aborted) {
          throw unavailable(url, `no complete answer for ${path} within ${timeoutMs} ms`, error);
        }
        const cause = (error as Error & { cause?: Error }).cause;
        throw unavailable(url, `${path}: ${cause?.message ?? (error as Error).message}`, error);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
