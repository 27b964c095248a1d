import { readdirSync, readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import type { ErrorCode } from '../../agent/core/errors';
import { alterTarSplitHeader, buildScratchImage, type Dockerd, layerStorage } from './dockerd';
import { tarOf } from './tar';

/**
 * The situations in which dockerd's error text decides something in vouch
 * (agent/device/docker/daemon-errors.ts), provoked on a real dockerd, and dockerd's answer
 * in each as it sent it. scripts/capture-dockerd-errors.ts writes the answers as fixtures,
 * `test/fixtures/dockerd/<version>/<storage driver>/<situation>.json`; the live test
 * provokes them again and checks them against the table.
 */

export interface DaemonAnswer {
  readonly situation: string;
  readonly what: string;
  /** dockerd's version (`docker version`'s Server Version). */
  readonly dockerd: string;
  readonly storageDriver: string;
  /** Method and path of the request answered. */
  readonly request: string;
  readonly status: number;
  /** The answer's body as dockerd sent it (utf8; the first 64 KiB). */
  readonly body: string;
  /** The table's row that the answer's message is classified by; null for none. */
  readonly row: string | null;
  /** With no row, for an export or an inspect: the code vouch fails with. */
  readonly code?: ErrorCode;
}

/** What an answer decides: the table's row, or with none the code vouch fails with. */
interface Outcome {
  readonly row: string | null;
  readonly code?: ErrorCode;
}

interface Situation {
  readonly name: string;
  readonly what: string;
  readonly outcome: (storageDriver: string) => Outcome;
  /** Sets the situation up; the request to send, and its body if any. */
  readonly provoke: (daemon: Dockerd) => Promise<{ method: string; path: string; body?: Buffer }>;
}

/** An image of two layers whose second is altered on disk by `alter` (its layer directory). */
async function alteredExport(
  daemon: Dockerd,
  name: string,
  alter: (layer: Awaited<ReturnType<typeof layerStorage>>) => Promise<unknown>,
) {
  const tag = `vouch-errors/${name}:1`;
  const id = await buildScratchImage(daemon.docker, tag, [
    { 'a.txt': `a of ${name}` },
    { 'b.txt': `b of ${name}` },
  ]);
  await alter(await layerStorage(daemon.docker, tag, 1));
  return { method: 'GET', path: `/images/${encodeURIComponent(id)}/get` };
}

const missingId = encodeURIComponent(`sha256:${'0'.repeat(64)}`);

export const situations: readonly Situation[] = [
  {
    name: 'file-changed',
    what: "docker save of an image one of whose files was rewritten in its layer's directory",
    outcome: () => ({ row: 'file-integrity-checksum' }),
    provoke: (daemon) =>
      alteredExport(daemon, 'changed', ({ dir }) => writeFile(join(dir, 'b.txt'), 'CHANGED')),
  },
  {
    name: 'file-removed',
    what: "docker save of an image one of whose files was deleted from its layer's directory",
    // dockerd 20.10 on overlay2 reads the layer through its `merged` mount, which the row
    // does not take for the layer's own directory: could not check.
    outcome: (storageDriver) =>
      storageDriver === 'vfs' ? { row: 'layer-file-missing' } : { row: null, code: 'UNAVAILABLE' },
    provoke: (daemon) => alteredExport(daemon, 'removed', ({ dir }) => rm(join(dir, 'b.txt'))),
  },
  {
    name: 'tar-split-altered',
    what: "docker save of an image with a tar header altered in a layer's tar-split record",
    outcome: () => ({ row: 'layer-data-unverified' }),
    provoke: (daemon) =>
      alteredExport(daemon, 'altered', ({ tarSplit }) => alterTarSplitHeader(tarSplit)),
  },
  {
    name: 'export-no-such-image',
    what: 'docker save of an image ID dockerd does not have',
    outcome: () => ({ row: null, code: 'UNAVAILABLE' }),
    provoke: async () => ({ method: 'GET', path: `/images/${missingId}/get` }),
  },
  {
    name: 'inspect-no-such-image',
    what: 'docker inspect of an image ID dockerd does not have: a 404, known by its status',
    outcome: () => ({ row: null, code: 'IMAGE_NOT_FOUND' }),
    provoke: async () => ({ method: 'GET', path: `/images/${missingId}/json` }),
  },
  {
    name: 'load-refused',
    what:
      'docker load of an archive whose manifest.json names a config it lacks: an error ' +
      'dockerd writes into a stream it has begun, as dockerd 25+ does when an export breaks off',
    outcome: () => ({ row: null }),
    provoke: async () => ({
      method: 'POST',
      path: '/images/load',
      body: await tarOf([
        {
          name: 'manifest.json',
          data: Buffer.from(JSON.stringify([{ Config: 'missing.json', Layers: [] }])),
        },
      ]),
    }),
  },
];

/** Provokes every situation on `daemon` (which is altered: one of its own). */
export async function provokeAll(daemon: Dockerd): Promise<DaemonAnswer[]> {
  const dockerd = (await daemon.docker.version()).Version;
  const storageDriver = (await daemon.docker.info()).Driver as string;
  const answers: DaemonAnswer[] = [];
  for (const { name, what, outcome, provoke } of situations) {
    const { method, path, body } = await provoke(daemon);
    const answer = await ask(daemon.socketPath, method, path, body);
    answers.push({
      situation: name,
      what,
      dockerd,
      storageDriver,
      request: `${method} ${path}`,
      ...answer,
      ...outcome(storageDriver),
    });
  }
  return answers;
}

const bodyBytes = 64 * 1024;

/** One request to the Engine's socket: the status and the body's first `bodyBytes`. */
function ask(
  socketPath: string,
  method: string,
  path: string,
  body?: Buffer,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const sent = request({ socketPath, method, path }, (response) => {
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        if (size < bodyBytes) chunks.push(chunk);
        size += chunk.length;
      });
      response.on('end', () => {
        const text = Buffer.concat(chunks).subarray(0, bodyBytes).toString('utf8');
        resolve({ status: response.statusCode ?? 0, body: text });
      });
      response.on('error', reject);
    });
    sent.on('error', reject);
    sent.end(body);
  });
}

export const fixturesDir = 'test/fixtures/dockerd';

export function fixturePath(answer: DaemonAnswer): string {
  return join(fixturesDir, answer.dockerd, answer.storageDriver, `${answer.situation}.json`);
}

/** Every fixture, for every dockerd version and storage driver. */
export function readFixtures(): DaemonAnswer[] {
  return readdirSync(fixturesDir, { recursive: true, encoding: 'utf8' })
    .filter((path) => path.endsWith('.json'))
    .sort()
    .map((path) => JSON.parse(readFileSync(join(fixturesDir, path), 'utf8')) as DaemonAnswer);
}
