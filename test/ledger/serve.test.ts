import { readFile, symlink } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VouchError } from '../../agent/core/errors';
import { appendEntries, type LogServer, publicDir, publishLog, serveLog } from '../../agent/ledger';
import { entries, tempLog } from '../helpers/log';

interface Response {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** A raw HTTP request: the path goes out exactly as given (fetch would normalize `..`). */
function get(
  url: string,
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<Response> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: hostname, port, path, method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('serveLog over real HTTP on 127.0.0.1', () => {
  let dir: string;
  let server: LogServer;
  beforeAll(async () => {
    const log = await tempLog();
    dir = log.dir;
    await appendEntries(dir, entries(0, 300));
    await publishLog(dir, log.key);
    await symlink('/etc/passwd', join(publicDir(dir), 'tile', 'entries', '999'));
    server = await serveLog(dir, { port: 0 });
  });
  afterAll(async () => {
    await server.close();
  });

  it('listens on the loopback address by default', () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
  });

  it('serves the checkpoint as text that is not cached', async () => {
    const res = await get(server.url, '/checkpoint');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.body).toEqual(await readFile(join(publicDir(dir), 'checkpoint')));
  });

  it('serves full tiles as immutable and partial tiles for a day', async () => {
    const full = await get(server.url, '/tile/0/000');
    expect(full.status).toBe(200);
    expect(full.headers['content-type']).toBe('application/octet-stream');
    expect(full.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(full.body).toHaveLength(8192);
    const partial = await get(server.url, '/tile/0/001.p/44');
    expect(partial.headers['cache-control']).toBe('public, max-age=86400');
    expect(partial.body).toHaveLength(44 * 32);
    expect((await get(server.url, '/tile/1/000.p/1?cachebust=1')).body).toHaveLength(32);
  });

  it('compresses entry bundles for clients that accept gzip', async () => {
    const path = '/tile/entries/001.p/44';
    const plain = await get(server.url, path);
    expect(plain.status).toBe(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers.vary).toBe('Accept-Encoding');
    const gzipped = await get(server.url, path, {
      headers: { 'Accept-Encoding': 'gzip, identity' },
    });
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gzipped.body)).toEqual(plain.body);
  });

  it('answers HEAD with the headers only', async () => {
    const res = await get(server.url, '/tile/0/000', { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers['content-length']).toBe('8192');
    expect(res.body).toHaveLength(0);
  });

  it.each([
    '/',
    '/tile',
    '/tile/',
    '/tile/0',
    '/tile/0/',
    '/tile/entries/',
    '/tile/0/001',
    '/tile/0/002.p/1',
    '/tile/0/001.p/43',
    '/tile/entries/999',
    '/log.json',
    '/state.json',
    '/hashes',
    '/entries/0',
    '/public/checkpoint',
    '/../log.json',
    '/tile/../../log.json',
    '/tile/0/../../../log.json',
    '/%2e%2e/log.json',
    '/tile/0/%30%30%30',
    '//checkpoint',
    '/checkpoint/',
    '/tile/0/000/',
    '/tile/0/x000/000',
    '/tile/00/000',
    '/tile/0/000.p/0',
  ])('answers 404 for %s, with no listing', async (path) => {
    const res = await get(server.url, path);
    expect(res.status).toBe(404);
    expect(res.body.toString()).toBe('not found\n');
  });

  it('allows only GET and HEAD', async () => {
    const res = await get(server.url, '/checkpoint', { method: 'POST' });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
  });

  it('reports an address it cannot listen on', async () => {
    const port = Number(new URL(server.url).port);
    const error = await serveLog(dir, { port }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(VouchError);
    expect((error as VouchError).code).toBe('UNAVAILABLE');
  });
});
