import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool } from '../../../agent/content/pool';
import { deepCheck } from '../../../agent/device/docker/deep';
import { exportImage } from '../../../agent/device/docker/export';
import { rejectsWith } from '../../helpers/errors';
import { imageArchive, tarOf } from '../../helpers/oci';

/**
 * The export reader against HTTP servers of our own on a unix socket and on TCP: each way
 * of framing a body (chunked, Content-Length, until close), the Engine's error answers,
 * broken answers, and bodies larger than the reader's ring of reused buffers.
 */

type Handler = (path: string) => { status: number; body: Buffer; framing: 'chunked' | 'length' };

let dir: string;
const servers: (Server | NetServer)[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => new Promise((done) => server.close(done))));
});
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vouch-export-'));
});

/** An HTTP server on a unix socket answering with `handler`, written in odd-sized pieces. */
async function engine(handler: Handler): Promise<{ docker: Docker; paths: string[] }> {
  const socketPath = join(dir, `engine-${servers.length}.sock`);
  const paths: string[] = [];
  const server = createHttpServer((request, response) => {
    paths.push(request.url ?? '');
    const { status, body, framing } = handler(request.url ?? '');
    response.writeHead(status, {
      'Content-Type': status === 200 ? 'application/x-tar' : 'application/json',
      ...(framing === 'length' && { 'Content-Length': String(body.length) }),
    });
    let at = 0;
    const write = () => {
      while (at < body.length) {
        const piece = body.subarray(at, at + 1000 + ((at * 7) % 70_000));
        at += piece.length;
        if (!response.write(piece)) {
          response.once('drain', write);
          return;
        }
      }
      response.end();
    };
    write();
  });
  servers.push(server);
  await new Promise<void>((ready) => server.listen(socketPath, ready));
  return { docker: new Docker({ socketPath }), paths };
}

/** A server that sends `raw` bytes as they are and closes. */
async function rawEngine(raw: Buffer): Promise<Docker> {
  const socketPath = join(dir, `raw-${servers.length}.sock`);
  const server = createNetServer((socket) => {
    socket.once('data', () => socket.end(raw));
  });
  servers.push(server);
  await new Promise<void>((ready) => server.listen(socketPath, ready));
  return new Docker({ socketPath });
}

async function readAll(docker: Docker, release: boolean): Promise<Buffer> {
  const exported = await exportImage(docker, 'sha256:x');
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of exported.body) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (release) exported.release(chunk as Buffer);
  }
  return Buffer.from(`${size}:${hash.digest('hex')}`);
}

const fingerprint = (body: Buffer) =>
  Buffer.from(`${body.length}:${createHash('sha256').update(body).digest('hex')}`);

describe('exportImage', () => {
  // Larger than the ring of reused buffers (16 × 1 MiB), and not a multiple of a buffer.
  const body = randomBytes(40 * 2 ** 20 + 12_345);

  for (const framing of ['chunked', 'length'] as const) {
    it(`reads a ${framing} body whole, reusing released buffers or not`, async () => {
      const { docker, paths } = await engine(() => ({ status: 200, body, framing }));
      expect(await readAll(docker, true)).toEqual(fingerprint(body));
      expect(await readAll(docker, false)).toEqual(fingerprint(body));
      expect(paths[0]).toBe('/images/sha256%3Ax/get');
    });
  }

  it('reads a body that ends when the connection closes', async () => {
    const docker = await rawEngine(
      Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: x\r\n\r\n'), body]),
    );
    expect(await readAll(docker, true)).toEqual(fingerprint(body));
  });

  it('reads over TCP (DOCKER_HOST=tcp://…)', async () => {
    const server = createHttpServer((_request, response) => response.end(body.subarray(0, 5000)));
    servers.push(server);
    await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
    const { port } = server.address() as { port: number };
    const docker = new Docker({ host: '127.0.0.1', port, protocol: 'http' });
    expect(await readAll(docker, true)).toEqual(fingerprint(body.subarray(0, 5000)));
  });

  it("gives the Engine's error answers with their status and message", async () => {
    const { docker } = await engine(() => ({
      status: 404,
      body: Buffer.from('{"message":"reference does not exist"}'),
      framing: 'length',
    }));
    await expect(exportImage(docker, 'x')).rejects.toMatchObject({
      statusCode: 404,
      message: '(HTTP code 404) reference does not exist',
    });
    const { docker: failing } = await engine(() => ({
      status: 500,
      body: Buffer.from('{"message":"file integrity checksum failed for \\"etc/passwd\\""}'),
      framing: 'chunked',
    }));
    await expect(exportImage(failing, 'x')).rejects.toMatchObject({
      statusCode: 500,
      message: '(HTTP code 500) file integrity checksum failed for "etc/passwd"',
    });
  });

  it('refuses answers that are not HTTP, or whose framing is broken', async () => {
    await rejectsWith(
      exportImage(await rawEngine(Buffer.from('SSH-2.0-x\r\n\r\n')), 'x'),
      'UNAVAILABLE',
    );
    await rejectsWith(
      exportImage(await rawEngine(Buffer.from(`HTTP/1.1 200 OK\r\nX: ${'y'.repeat(70_000)}`)), 'x'),
      'UNAVAILABLE',
    );
    const badChunk = await rawEngine(
      Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n'),
    );
    await expect(readAll(badChunk, true)).rejects.toThrow(/a bad chunk size/);
    const cut = await rawEngine(
      Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a little'),
    );
    await expect(readAll(cut, true)).rejects.toThrow(/closed before the answer ended/);
  });

  it('falls back to dockerode for a client that is not on a plain socket', async () => {
    const stand = {
      getImage: (name: string) => ({ get: async () => [Buffer.from(`export of ${name}`)] }),
    } as unknown as Docker;
    const exported = await exportImage(stand, 'img');
    const chunks: Buffer[] = [];
    for await (const chunk of exported.body) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('export of img');
  });
});

describe('deepCheck over a served export larger than the reused buffers', () => {
  const pool = new HashPool({ workers: 2, chunkSize: 2 ** 20, inFlightBytes: 8 * 2 ** 20 });
  afterAll(() => pool.close());

  it('is UNAVAILABLE when the answer is cut short or its framing breaks', async () => {
    const archive = await imageArchive({ layers: [{ a: 'one' }], layout: 'docker' });
    const whole = await tarOf(archive.entries);
    const top = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
    const chunk = Buffer.concat([Buffer.from(`${whole.length.toString(16)}\r\n`), whole]);
    // The decoder cannot know the stream ended: the socket's end says it, export.ts fails.
    const cut = await rawEngine(Buffer.concat([Buffer.from(top), chunk.subarray(0, 2000)]));
    const broken = await rejectsWith(deepCheck(cut, archive.id, pool), 'UNAVAILABLE');
    expect(broken.message).toBe(
      'docker save broke off: the connection closed before the answer ended',
    );
    const badSize = await rawEngine(
      Buffer.concat([Buffer.from(top), chunk, Buffer.from('\r\nzz\r\n')]),
    );
    const refused = await rejectsWith(deepCheck(badSize, archive.id, pool), 'UNAVAILABLE');
    expect(refused.message).toBe("Docker's answer: a bad chunk size");
    const headCut = await rawEngine(Buffer.from('HTTP/1.1 200 OK\r\nContent-Le'));
    const early = await rejectsWith(deepCheck(headCut, archive.id, pool), 'UNAVAILABLE');
    expect(early.message).toBe(
      `cannot export image ${archive.id} from Docker: the connection closed before the answer ended`,
    );
  });

  it('hashes every layer right, and finds the one altered', async () => {
    // Random text, so that chunks swapped or repeated by the reader would show.
    const content = (n: number) =>
      randomBytes(Math.ceil(n / 2))
        .toString('hex')
        .slice(0, n);
    const archive = await imageArchive({
      layers: [
        { a: content(9 * 2 ** 20) },
        { b: content(13 * 2 ** 20 + 7) },
        { c: content(11 * 2 ** 20) },
      ],
      layout: 'docker',
    });
    const whole = await tarOf(archive.entries);
    const { docker } = await engine(() => ({ status: 200, body: whole, framing: 'chunked' }));
    const result = await deepCheck(docker, archive.id, pool);
    expect(result.matches).toBe(true);
    expect(result.layers.map((layer) => layer.diffId)).toEqual(archive.diffIds);
    // One byte of the third layer's file, far past the first pass around the ring: past the
    // outer header and the layer tar's own header.
    const altered = Buffer.from(whole);
    const offset = altered.indexOf(Buffer.from(archive.layerPaths[2] as string)) + 512 + 512 + 4096;
    altered[offset] = (altered[offset] as number) ^ 1;
    const { docker: lying } = await engine(() => ({
      status: 200,
      body: altered,
      framing: 'chunked',
    }));
    const found = await deepCheck(lying, archive.id, pool);
    expect(found.mismatch).toMatch(/^layer 3 of 3 /);
  });
});

describe('deepCheck memory', () => {
  const pool = new HashPool({ workers: 2, chunkSize: 2 ** 20, inFlightBytes: 8 * 2 ** 20 });
  afterAll(() => pool.close());

  /** Bytes `source` yields, written to `sink` with backpressure. */
  async function pour(source: AsyncIterable<unknown>, sink: NodeJS.WritableStream): Promise<void> {
    for await (const chunk of source) {
      if (!sink.write(chunk as Buffer)) await once(sink as NodeJS.EventEmitter, 'drain');
    }
  }

  /** A layer tar of one file of `size` zero bytes, made as it is read. */
  function zerosLayer(size: number): AsyncIterable<unknown> {
    const layer = pack();
    // A fixed mtime: the same bytes each time it is made.
    const file = layer.entry({ name: 'zeros', size, mtime: new Date(0) }, () => layer.finalize());
    const sink = file as unknown as NodeJS.WritableStream;
    void pour(
      (async function* () {
        for (let left = size; left > 0; left -= 2 ** 20)
          yield Buffer.alloc(Math.min(left, 2 ** 20));
      })(),
      sink,
    ).then(() => sink.end());
    return layer;
  }

  it('holds a bounded amount of memory whatever the layer size (streams, never buffers)', async () => {
    const size = 768 * 2 ** 20;
    const hash = createHash('sha256');
    let layerBytes = 0;
    for await (const chunk of zerosLayer(size)) {
      hash.update(chunk as Buffer);
      layerBytes += (chunk as Buffer).length;
    }
    const diffId = `sha256:${hash.digest('hex')}`;
    const config = Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: [diffId] } }));
    const idHex = createHash('sha256').update(config).digest('hex');
    const socketPath = join(dir, 'big.sock');
    const server = createHttpServer(async (_request, response) => {
      const archive = pack();
      archive.entry({ name: `${idHex}.json` }, config);
      const layer = archive.entry({ name: 'l/layer.tar', size: layerBytes }, () => {
        archive.entry(
          { name: 'manifest.json' },
          JSON.stringify([{ Config: `${idHex}.json`, Layers: ['l/layer.tar'] }]),
        );
        archive.finalize();
      });
      const sink = layer as unknown as NodeJS.WritableStream;
      void pour(zerosLayer(size), sink).then(() => sink.end());
      await pour(archive, response);
      response.end();
    });
    servers.push(server);
    await new Promise<void>((ready) => server.listen(socketPath, ready));
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 10);
    try {
      const result = await deepCheck(new Docker({ socketPath }), `sha256:${idHex}`, pool);
      expect(result).toMatchObject({ matches: true, layers: [{ diffId, bytes: layerBytes }] });
    } finally {
      clearInterval(sampler);
    }
    // The reader's ring (16 MiB), the pool's buffers (8 MiB), stream buffers, the server's
    // side of it in this same process: far below the 768 MiB that went through.
    expect(peak - before).toBeLessThan(96 * 2 ** 20);
  }, 60_000);
});
