import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { cliBundle } from './helpers/device';

/**
 * The README's quick start, run as a newcomer would paste it: the ```sh block after the
 * `<!-- quick-start` marker, in an empty directory, with `vouch` on the PATH.
 */

/** The quick-start block of the README, as written. */
function quickStart(readme: string): string {
  const block = /<!-- quick-start[^>]*-->\n```sh\n([\s\S]*?)\n```/.exec(readme)?.[1];
  if (block === undefined) throw new Error('README.md has no <!-- quick-start --> ```sh block');
  return block;
}

/** Its commands: comments and blank lines left out, continued lines joined. */
function commandsOf(block: string): string[] {
  return block
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));
}

const marker = '@@quick-start step';

/**
 * The commands as one bash script that marks where each one's output ends and its exit
 * code, so that the test sees every step; after the server starts in the background, the
 * script waits for its port (on a loaded machine `sleep 1` may not be enough).
 */
function instrumented(commands: readonly string[], port: number): string {
  return commands
    .flatMap((command, index) => [
      command,
      `echo "${marker} ${index} exit $?"`,
      ...(/&(\s+sleep \d+)?$/.test(command)
        ? [
            `for i in $(seq 200); do (: </dev/tcp/127.0.0.1/${port}) 2>/dev/null && break; sleep 0.1; done`,
          ]
        : []),
    ])
    .join('\n');
}

interface Step {
  readonly command: string;
  readonly exitCode: number;
  readonly output: string;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Runs `script` with bash in `dir`, bounded; the whole process group is killed at the end. */
async function runScript(script: string, dir: string, env: NodeJS.ProcessEnv) {
  const child = spawn('bash', ['-c', script], { cwd: dir, env, detached: true });
  const killGroup = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  onTestFinished(killGroup);
  const timer = setTimeout(killGroup, 150_000);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const closed = new Promise((resolve) => child.on('close', resolve));
  const exitCode = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  // The server the script left in the background holds its output open: it goes now, and
  // then the output is whole.
  killGroup();
  await closed;
  clearTimeout(timer);
  return { exitCode, stdout, stderr };
}

describe("the README's quick start", () => {
  it('is found and has the steps the README promises', () => {
    const commands = commandsOf(quickStart(readFileSync('README.md', 'utf8')));
    expect(commands.filter((command) => command.startsWith('vouch verify'))).toHaveLength(2);
    // "From nothing to a TRUSTED and a REVOKED verdict in at most ten commands" (issue #13).
    expect(commands.filter((command) => /^vouch /.test(command)).length).toBeLessThanOrEqual(10);
    expect(commands.some((command) => command.includes('127.0.0.1:8080 &'))).toBe(true);
  });

  it('runs from nothing to TRUSTED, then REVOKED', { timeout: 240_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vouch-quickstart-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'vouch'),
      `#!/bin/sh\nexec "${process.execPath}" "${cliBundle}" "$@"\n`,
    );
    chmodSync(join(bin, 'vouch'), 0o755);
    const work = join(dir, 'work');
    mkdirSync(work);

    // The README's port may be taken here: each run serves on a free one.
    const port = await freePort();
    const block = quickStart(readFileSync('README.md', 'utf8'));
    const commands = commandsOf(block.replaceAll('127.0.0.1:8080', `127.0.0.1:${port}`));
    const result = await runScript(instrumented(commands, port), work, {
      PATH: `${bin}:${process.env.PATH}`,
      HOME: dir,
    });

    const steps: Step[] = [];
    let rest = result.stdout;
    for (const [index, command] of commands.entries()) {
      const found = new RegExp(`^${marker} ${index} exit (\\d+)$`, 'm').exec(rest);
      expect(
        found,
        `no end of step ${index} (${command}):\n${rest}\n${result.stderr}`,
      ).not.toBeNull();
      if (!found) return;
      steps.push({ command, exitCode: Number(found[1]), output: rest.slice(0, found.index) });
      rest = rest.slice(found.index + found[0].length + 1);
    }
    const verifications = steps.filter((step) => step.command.startsWith('vouch verify'));
    for (const step of steps) {
      if (step === verifications[1]) continue;
      expect(step.exitCode, `${step.command}\n${step.output}\n${result.stderr}`).toBe(0);
    }
    const [trusted, revoked] = verifications;
    expect(trusted?.output).toMatch(/^TRUSTED app\.txt sha256:[0-9a-f]{64}: /m);
    expect(revoked?.exitCode, revoked?.output).toBe(4);
    expect(revoked?.output).toMatch(
      /^REVOKED app\.txt sha256:[0-9a-f]{64}: .*: signed by mistake$/m,
    );
  });
});
