import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { wrap } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Script } from 'node:vm';
import { describe, expect, it, onTestFinished } from 'vitest';
import { version } from '../../package.json';

const exec = promisify(execFile);

// dist/ is the one `npm run build` made before any test file ran (test/global-setup.ts).
describe('npm run build', () => {
  it('produces a self-contained dist/vouch.cjs that runs under plain node', async () => {
    const { stdout } = await exec(process.execPath, ['dist/vouch.cjs', '--version']);
    expect(stdout).toBe(`${version}\n`);

    // Away from node_modules, as on a device: the launcher and the CLI bundle need nothing
    // else — with their code cache, with one V8 rejects, and with none.
    const dir = mkdtempSync(join(tmpdir(), 'vouch-bundle-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    for (const name of ['vouch.cjs', 'cli.cjs']) copyFileSync(join('dist', name), join(dir, name));
    const config = async () => {
      const { stdout } = await exec(
        process.execPath,
        [join(dir, 'vouch.cjs'), 'config', '-o', 'json'],
        {
          cwd: '/',
        },
      );
      expect(JSON.parse(stdout)).toMatchObject({ stateDir: '/var/lib/vouch', logLevel: 'info' });
    };
    await config();
    writeFileSync(join(dir, 'cli.cjs.cache'), randomBytes(4096));
    await config();
    copyFileSync('dist/cli.cjs.cache', join(dir, 'cli.cjs.cache'));
    await config();
  });

  it('makes a code cache that this Node accepts for the CLI bundle', () => {
    const source = wrap(readFileSync('dist/cli.cjs', 'utf8'));
    const fits = new Script(source, { cachedData: readFileSync('dist/cli.cjs.cache') });
    expect(fits.cachedDataRejected).toBe(false);
    // V8 does check: the cache of another source is refused.
    const other = new Script(`${source};`, { cachedData: readFileSync('dist/cli.cjs.cache') });
    expect(other.cachedDataRejected).toBe(true);
  });

  it('writes bundles of ASCII only, which V8 holds at one byte a character', () => {
    // esbuild escapes what it may; a tagged template's text it keeps as written, and a
    // single → there made V8 hold the CLI's 1.3 MB source as 2.6 MB in every process.
    const bundles = readdirSync('dist').filter((name) => name.endsWith('.cjs'));
    expect(bundles).toEqual(expect.arrayContaining(['cli.cjs', 'verify.worker.cjs']));
    for (const name of bundles) {
      const bytes = readFileSync(join('dist', name));
      const at = bytes.findIndex((byte) => byte > 0x7f);
      expect(at === -1 ? '' : `${name}: ${bytes.subarray(at - 60, at + 20)}`).toBe('');
    }
  });

  it('runs the hash pool from the bundle: dist/vouch.cjs finds dist/hash.worker.cjs', async () => {
    // Copied away from node_modules and the sources, as on a device.
    const dir = mkdtempSync(join(tmpdir(), 'vouch-bundle-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    for (const name of ['vouch.cjs', 'cli.cjs']) copyFileSync(join('dist', name), join(dir, name));
    const file = join(dir, 'data.bin');
    const data = randomBytes(3 * 2 ** 20 + 5);
    writeFileSync(file, data);
    const hw = [join(dir, 'vouch.cjs'), 'hw', '--measure', file, '-o', 'json'];

    // Without its worker beside it, the pool fails fast instead of waiting forever.
    const missing = await exec(process.execPath, hw, { cwd: '/' }).catch((error) => error);
    expect(missing.code).toBe(70);
    expect(JSON.parse(missing.stdout).error.code).toBe('WORKER_FAILED');

    copyFileSync('dist/hash.worker.cjs', join(dir, 'hash.worker.cjs'));
    const { stdout } = await exec(process.execPath, hw, { cwd: '/' });
    expect(JSON.parse(stdout).measured).toEqual([
      {
        path: file,
        size: data.length,
        sha256: createHash('sha256').update(data).digest('hex'),
        seconds: expect.any(Number),
      },
    ]);
  });

  it('prints --version without loading what only the commands need', async () => {
    // Each command loads its action when it runs (Act in agent/cli/program.ts): a definition
    // that imported an implementation would load it, and its builtins, at every start.
    const dir = mkdtempSync(join(tmpdir(), 'vouch-start-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const preload = join(dir, 'builtins.cjs');
    writeFileSync(
      preload,
      "process.on('exit', () => process.stderr.write(JSON.stringify(process.moduleLoadList)));",
    );
    const { stdout, stderr } = await exec(process.execPath, [
      '--require',
      preload,
      'dist/vouch.cjs',
      '--version',
    ]);
    expect(stdout).toBe(`${version}\n`);
    const loaded: string[] = JSON.parse(stderr);
    expect(loaded).toContain('NativeModule vm');
    for (const builtin of ['crypto', 'zlib', 'http', 'worker_threads', 'os']) {
      expect(loaded).not.toContain(`NativeModule ${builtin}`);
    }
  });

  it('loads dockerode from dist/dockerode.cjs beside the bundle, only for Docker commands', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vouch-bundle-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    for (const name of ['vouch.cjs', 'cli.cjs']) copyFileSync(join('dist', name), join(dir, name));
    const vouch = (...args: string[]) =>
      exec(process.execPath, [join(dir, 'vouch.cjs'), ...args, '-o', 'json'], {
        cwd: '/',
        env: { ...process.env, DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}` },
      }).catch((error) => error);
    await vouch('keygen', '--out', dir, '--signer', 'author');
    const sign = [
      'sign',
      '--image',
      'example:1',
      '--signer',
      'author',
      '--key',
      join(dir, 'author.key'),
    ];

    // Without it, a Docker command says what is missing; the others never load it.
    const missing = await vouch(...sign);
    expect(missing.stderr + missing.stdout).toContain('dockerode.cjs');
    // With it beside the bundle: dockerode runs and finds no daemon at DOCKER_HOST.
    copyFileSync('dist/dockerode.cjs', join(dir, 'dockerode.cjs'));
    const unavailable = await vouch(...sign);
    expect(unavailable.code).toBe(69);
    expect(JSON.parse(unavailable.stdout).error.message).toContain('no-docker.sock');
  });
});
