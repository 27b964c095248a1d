import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildScratchImage, type Dockerd, startDockerd } from '../../../scripts/lib/dockerd';
import { waitFor } from '../../../scripts/lib/services';
import { runCli } from '../../helpers/cli';
import { grow, signerId, testWorld, type World } from '../../helpers/device';
import { pauseProgram } from '../../helpers/pause';
import { describeWith } from '../../helpers/services';
import { signedStatement } from '../../helpers/trust';

let daemon: Dockerd;
let world: World;
let work: string;
let stateDir: string;
let configPath: string;
const trusted = 'ghcr.io/example/app:1';
const revoked = 'ghcr.io/example/old:1';
const ids: Record<string, string> = {};

const env = () => ({ DOCKER_HOST: daemon.dockerHost });
const common = () => ['--state-dir', stateDir, '--config', configPath, '--log-level', 'silent'];

describeWith('docker', 'vouch watch', () => {
  beforeAll(async () => {
    [daemon, world] = await Promise.all([startDockerd(), testWorld()]);
    work = await mkdtemp(join(tmpdir(), 'vouch-watch-cli-'));
    stateDir = join(work, 'state');
    configPath = join(work, 'agent.yaml');
    await writeFile(
      configPath,
      [
        'images:',
        '  scopes:',
        `    - { match: 'ghcr.io/example/**', signer: '${signerId}', enforce: enforce }`,
      ].join('\n'),
    );
    const statements: Uint8Array[] = [];
    for (const [i, tag] of [trusted, revoked].entries()) {
      const pause = { content: pauseProgram(), mode: 0o755 };
      const id = await buildScratchImage(daemon.docker, tag, { pause, tag });
      ids[tag] = id;
      for (const status of tag === revoked ? (['trusted', 'revoked'] as const) : ['trusted']) {
        statements.push(
          signedStatement(world.signer, {
            signer: signerId,
            subjects: [{ name: tag, sha256: id.slice('sha256:'.length) }],
            status: status as 'trusted' | 'revoked',
            issuedAt: new Date(Date.UTC(2025, 5, 1, 0, 0, i + statements.length)),
          }),
        );
      }
    }
    await grow(world, 0, statements);
    const sync = await runCli([
      'sync',
      '--state-dir',
      stateDir,
      '--root',
      world.rootPath,
      '--mirror',
      world.mirror,
      '--log-level',
      'silent',
    ]);
    expect(sync.exitCode, sync.stderr).toBe(0);
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('--once checks every image, enforces, and exits with the worst status', async () => {
    const container = await daemon.docker.createContainer({
      Image: revoked,
      Cmd: ['/pause'],
      StopSignal: 'SIGKILL',
      HostConfig: { NetworkMode: 'none' },
    });
    await container.start();
    try {
      const json = await runCli(['watch', '--once', '-o', 'json', ...common()], env());
      expect(json.exitCode, json.stderr).toBe(4);
      const data = JSON.parse(json.stdout);
      const byId = Object.fromEntries(
        data.images.map((image: { id: string }) => [image.id, image]),
      );
      expect(byId[ids[trusted] as string]).toMatchObject({
        status: 'TRUSTED',
        decision: { action: 'none' },
      });
      expect(byId[ids[revoked] as string]).toMatchObject({
        status: 'REVOKED',
        decision: { mode: 'enforce', action: 'stop' },
      });
      expect(data.actions).toMatchObject([{ action: 'stopped', image: ids[revoked] }]);
      expect(data.exitCode).toBe(4);
      expect((await container.inspect()).State.Running).toBe(false);

      const text = await runCli(['watch', '--once', ...common()], env());
      expect(text.exitCode).toBe(4);
      expect(text.stdout).toContain(`TRUSTED ${trusted} ${ids[trusted]}: `);
      expect(text.stdout).toContain(`REVOKED ${revoked} ${ids[revoked]}: `);
      expect(text.stdout).toContain('[enforce: stop]');
    } finally {
      await container.remove({ force: true });
    }
  });

  it('--once without Docker: exit 69, no status', async () => {
    const result = await runCli(['watch', '--once', '-o', 'json', ...common()], {
      DOCKER_HOST: `unix://${join(work, 'no-docker.sock')}`,
    });
    expect(result.exitCode).toBe(69);
    expect(JSON.parse(result.stdout).error.code).toBe('UNAVAILABLE');
  });

  it('follows events until SIGTERM, one JSON line per verdict, then stops cleanly', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'agent/cli/main.ts', 'watch', '-o', 'json', ...common()],
      {
        cwd: join(__dirname, '../../..'),
        env: { ...process.env, ...env() },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const lines: string[] = [];
    createInterface({ input: child.stdout }).on('line', (line) => lines.push(line));
    const events = () =>
      lines.filter((line) => line.startsWith('{"')).map((line) => JSON.parse(line));
    const verdictOf = (id: string) => events().find((event) => event.verdict?.id === id)?.verdict;
    try {
      await waitFor(
        'the first check',
        async () => [trusted, revoked].every((tag) => verdictOf(ids[tag] as string)),
        30_000,
      );
      expect(verdictOf(ids[trusted] as string)).toMatchObject({
        status: 'TRUSTED',
        trigger: 'startup',
      });
      const fresh = await buildScratchImage(daemon.docker, 'ghcr.io/example/new:1', { a: 'new' });
      await waitFor('the new image', async () => !!verdictOf(fresh), 20_000);
      expect(verdictOf(fresh)).toMatchObject({ status: 'UNKNOWN', trigger: 'image tag' });
    } finally {
      child.kill('SIGTERM');
      if (child.exitCode === null) await once(child, 'exit');
    }
    expect(child.exitCode).toBe(0);
    const report = JSON.parse(lines.filter((line) => !line.startsWith('{"')).join('\n'));
    expect(report).toMatchObject({ stopped: 'SIGTERM', actions: 0 });
    expect(report.images.map((image: { id: string }) => image.id)).toContain(ids[trusted]);
  });
});
