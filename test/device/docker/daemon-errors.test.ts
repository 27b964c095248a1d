import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectImage } from '../../../agent/content/docker';
import {
  apiErrorMessage,
  daemonErrors,
  findDaemonError,
  streamErrorMessage,
} from '../../../agent/device/docker/daemon-errors';
import { deepCheck } from '../../../agent/device/docker/deep';
import { type Dockerd, startDockerd } from '../../../scripts/lib/dockerd';
import {
  type DaemonAnswer,
  fixturePath,
  provokeAll,
  readFixtures,
  situations,
} from '../../../scripts/lib/dockerd-errors';
import { rejectsWith } from '../../helpers/errors';
import { describeWith } from '../../helpers/services';

/**
 * The table of dockerd's messages that decide a verdict, against dockerd's own answers:
 * the fixtures captured from each dockerd version the tests met
 * (scripts/capture-dockerd-errors.ts), and the dockerd running here.
 */

const fixtures = readFixtures();

/** The message vouch reads from an answer: an API error's, or the one written into a stream. */
function messageOf(answer: DaemonAnswer): string | undefined {
  return answer.status === 200 ? streamErrorMessage(answer.body) : apiErrorMessage(answer.body);
}

/**
 * What vouch makes of an answer to an export (`deepCheck`) or an inspect (`inspectImage`)
 * from `docker`: the finding of the answer's row, or a failure with the answer's code.
 */
async function expectDecision(answer: DaemonAnswer, docker: Docker): Promise<void> {
  const [, method, id, what] = /^(\w+) \/images\/([^/]+)\/(get|json)$/.exec(answer.request) ?? [];
  if (method !== 'GET') return;
  const ref = decodeURIComponent(id as string);
  const decided = what === 'get' ? deepCheck(docker, ref) : inspectImage(docker, ref);
  if (answer.row === null) {
    await rejectsWith(decided, answer.code as string);
    return;
  }
  const found = findDaemonError(messageOf(answer) as string);
  expect(await decided).toEqual({
    matches: false,
    layout: 'docker',
    layers: [],
    mismatch: found?.text,
  });
}

describe('the table of dockerd error messages', () => {
  it('has rows of distinct names, each a pattern without groups of its own', () => {
    expect(new Set(daemonErrors.map((row) => row.name)).size).toBe(daemonErrors.length);
    for (const row of daemonErrors) {
      // A capturing group would shift the groups that tell the rows apart.
      expect(new RegExp(`${row.pattern.source}|`).exec('')?.length, row.name).toBe(1);
      expect(row.pattern.flags, row.name).toBe('');
    }
  });

  it('finds the leftmost finding in a message, and none in others', () => {
    const layer = `sha256:${'b'.repeat(64)}`;
    const both = `could not verify layer data for: ${layer}; file integrity checksum failed for "x"`;
    expect(findDaemonError(both)).toMatchObject({
      row: { name: 'layer-data-unverified' },
      text: `could not verify layer data for: ${layer}`,
    });
    expect(findDaemonError('file integrity checksum failed for "a\\"b"!')?.text).toBe(
      'file integrity checksum failed for "a\\"b"',
    );
    for (const message of [
      '',
      'no space left on device',
      `open /d/overlay2/${'c'.repeat(64)}/merged/x: no such file or directory`,
      `open /d/vfs/dir/${'c'.repeat(64)}/a: no such file or directory/b: permission denied`,
      'could not verify layer data for: sha256:short',
    ]) {
      expect(findDaemonError(message), message).toBeUndefined();
    }
  });

  it('reads the message of an API error answer and of an error written into a stream', () => {
    expect(apiErrorMessage('{"message":"no such image: x"}\n')).toBe('no such image: x');
    // Not the Engine's JSON: the text as it is, trimmed and capped.
    expect(apiErrorMessage(' page not found \n')).toBe('page not found');
    expect(apiErrorMessage('{"other":1}')).toBe('{"other":1}');
    expect(apiErrorMessage('null')).toBe('null');
    expect(apiErrorMessage('x'.repeat(5000))).toHaveLength(4096);
    const tail = 'partial tar\0\0{"errorDetail":{"message":"a \\"quoted\\" b"},"error":"a"}\r\n';
    expect(streamErrorMessage(tail)).toBe('a "quoted" b');
    expect(streamErrorMessage('{"error":"only the short form"}')).toBeUndefined();
    expect(streamErrorMessage('{"errorDetail":{"message":"bad \\q escape"}}')).toBeUndefined();
  });
});

describe('the fixtures of dockerd answers', () => {
  let dir: string;
  const servers: Server[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vouch-daemon-errors-'));
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => new Promise((done) => server.close(done))));
    await rm(dir, { recursive: true, force: true });
  });

  /** An Engine on a unix socket that gives `answer` to any request. */
  async function answering(answer: DaemonAnswer): Promise<Docker> {
    const socketPath = join(dir, `engine-${servers.length}.sock`);
    const server = createServer((_request, response) => {
      response.writeHead(answer.status, { 'Content-Type': 'application/json' });
      response.end(answer.body);
    });
    servers.push(server);
    await new Promise<void>((ready) => server.listen(socketPath, ready));
    return new Docker({ socketPath });
  }

  it('are there, each of a known situation, in the place their content names', () => {
    expect(fixtures.length).toBeGreaterThan(0);
    const names = new Set(situations.map((situation) => situation.name));
    for (const fixture of fixtures) {
      expect(names.has(fixture.situation), fixture.situation).toBe(true);
      expect(existsSync(fixturePath(fixture)), fixturePath(fixture)).toBe(true);
    }
    // So each names a place of its own: the one it was read from.
    expect(new Set(fixtures.map(fixturePath)).size).toBe(fixtures.length);
  });

  it('are each classified as their row says', () => {
    for (const fixture of fixtures) {
      const message = messageOf(fixture);
      expect(message, fixturePath(fixture)).toBeDefined();
      const found = findDaemonError(message as string);
      expect(found?.row.name ?? null, fixturePath(fixture)).toBe(fixture.row);
    }
  });

  it('cover every row, and each row names the dockerd versions of its fixtures', () => {
    for (const row of daemonErrors) {
      const versions = new Set(fixtures.filter((f) => f.row === row.name).map((f) => f.dockerd));
      expect([...versions].sort(), row.name).toEqual([...row.seenWith].sort());
      expect(versions.size, row.name).toBeGreaterThan(0);
    }
  });

  it('decide an export or an inspect as their row or code says, served as dockerd sent them', async () => {
    for (const fixture of fixtures) await expectDecision(fixture, await answering(fixture));
  });
});

describeWith('docker', 'the dockerd here: its messages still match the table', () => {
  let daemon: Dockerd;
  let answers: DaemonAnswer[];
  beforeAll(async () => {
    daemon = await startDockerd();
    answers = await provokeAll(daemon);
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('classifies each answer as the table says for its situation', () => {
    for (const answer of answers) {
      const message = messageOf(answer);
      expect(message, answer.situation).toBeDefined();
      expect(findDaemonError(message as string)?.row.name ?? null, answer.situation).toBe(
        answer.row,
      );
    }
  });

  it('decides each export or inspect as the table says', async () => {
    for (const answer of answers) await expectDecision(answer, daemon.docker);
  });

  it('has fixtures for this dockerd version (else: run scripts/capture-dockerd-errors.ts)', () => {
    for (const answer of answers) {
      const path = fixturePath(answer);
      expect(existsSync(path), `${path}: run scripts/capture-dockerd-errors.ts as root`).toBe(true);
    }
  });
});
