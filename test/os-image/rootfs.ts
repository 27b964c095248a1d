import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireBinary, waitFor } from '../../scripts/lib/services';

/**
 * A minimal arm64 Debian root filesystem, as the os-image tests use it (os-image/README.md
 * "arm64 root filesystem test"): debootstrap's first stage here, its second stage in a
 * chroot under qemu-user, kept as a tarball named by what it is made of, and unpacked fresh
 * for each run. Each program run in it gets a mount namespace of its own with /proc mounted
 * in it (unshare(1)), so no mount outlives the program, whatever stops it.
 */

/** What the base root filesystem is made of; a change makes a new one. */
export const debian = {
  suite: 'bookworm',
  arch: 'arm64',
  variant: 'minbase',
  include: [] as readonly string[],
  mirror: 'http://deb.debian.org/debian',
};

export const cacheDir = 'node_modules/.cache/vouch-os-image';

/** The environment of every program run in the root filesystem: nothing of the host's. */
const chrootEnv = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  LANG: 'C.UTF-8',
  DEBIAN_FRONTEND: 'noninteractive',
};

export interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `file` in a process group of its own, killed whole (SIGKILL) after `timeoutMs`:
 * nothing it starts is left behind, and the run never hangs.
 */
export function run(
  file: string,
  args: readonly string[],
  timeoutMs: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(
          new Error(`${file} ${args.join(' ')}: killed after ${timeoutMs / 1000} s${tail(stderr)}`),
        );
      } else resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
    });
  });
}

/** Like `run`, and an error unless it exits 0. */
export async function runOk(
  file: string,
  args: readonly string[],
  timeoutMs: number,
  env?: NodeJS.ProcessEnv,
): Promise<Result> {
  const result = await run(file, args, timeoutMs, env);
  if (result.code !== 0) {
    throw new Error(`${file} ${args.join(' ')}: exit ${result.code}${tail(result.stderr)}`);
  }
  return result;
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

function tail(text: string, lines = 20): string {
  const last = text.trimEnd().split('\n').slice(-lines).join('\n');
  return last ? `:\n${last}` : '';
}

/**
 * The base root filesystem's tarball: from the cache, else made with debootstrap (a few
 * minutes: os-image/README.md), which needs `qemu` registered (registerQemu) for its second
 * stage. Tarballs of other contents are removed.
 */
export async function baseTarball(): Promise<string> {
  const key = createHash('sha256').update(JSON.stringify(debian)).digest('hex').slice(0, 16);
  const tarball = join(cacheDir, `debian-${debian.suite}-${debian.arch}-${key}.tar`);
  if (existsSync(tarball)) return tarball;
  await reachMirror(debian.mirror);
  await mkdir(cacheDir, { recursive: true });
  for (const old of await readdir(cacheDir)) await rm(join(cacheDir, old), { force: true });
  const rootfs = await Rootfs.empty();
  try {
    const debootstrap = requireBinary('rootfs');
    const include = debian.include.length > 0 ? [`--include=${debian.include.join(',')}`] : [];
    // First stage: the packages fetched and unpacked, nothing of the target run.
    await runOk(
      debootstrap,
      [
        `--arch=${debian.arch}`,
        `--variant=${debian.variant}`,
        ...include,
        '--foreign',
        debian.suite,
        rootfs.dir,
        debian.mirror,
      ],
      10 * 60_000,
    ).catch(async (error) => {
      throw new Error(`${error.message}${tail(await rootfs.read('/debootstrap/debootstrap.log'))}`);
    });
    // Second stage: the packages configured by the target's own programs, under qemu.
    await rootfs
      .runOk(['/debootstrap/debootstrap', '--second-stage'], { timeoutMs: 20 * 60_000 })
      .catch(async (error) => {
        const log = await rootfs.read('/debootstrap/debootstrap.log');
        throw new Error(`${error.message}${tail(log)}`);
      });
    // Complete or absent under its name, whatever stops this.
    const partial = `${tarball}.${process.pid}`;
    await runOk('tar', ['-C', rootfs.dir, '--numeric-owner', '-cf', partial, '.'], 5 * 60_000);
    await rename(partial, tarball);
    return tarball;
  } finally {
    await rootfs.remove();
  }
}

/** A clear error, at once, when the Debian mirror does not answer (rather than a stalled debootstrap). */
export async function reachMirror(mirror: string): Promise<void> {
  const url = `${mirror}/dists/${debian.suite}/InRelease`;
  const answer = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(20_000) }).catch(
    (error: Error) => error,
  );
  if (answer instanceof Error || !answer.ok) {
    const why = answer instanceof Error ? (answer.cause ?? answer).toString() : answer.status;
    throw new Error(
      `the Debian mirror does not answer (${url}: ${why}): the first run makes the arm64 root ` +
        `filesystem from it with debootstrap, later runs take it from ${cacheDir}`,
    );
  }
}

const binfmt = '/proc/sys/fs/binfmt_misc';
const entryPrefix = 'vouch-rootfs-';

/**
 * Registers qemu-aarch64-static with binfmt_misc under a name of this process's, so that
 * arm64 programs run in a chroot: the F flag makes the kernel open the interpreter now, so
 * nothing of qemu needs to be in the root filesystem (kernel docs,
 * admin-guide/binfmt-misc.rst). The magic and mask are those Debian's qemu-user-static
 * registers. An entry of this process's wins over an older one for the same programs (the
 * kernel tries the newest first). Entries left by a process that died are removed.
 */
export async function registerQemu(): Promise<{ unregister(): Promise<void> }> {
  const qemu = requireBinary('qemu');
  if (!existsSync(join(binfmt, 'register'))) {
    await runOk('mount', ['-t', 'binfmt_misc', 'binfmt_misc', binfmt], 10_000);
  }
  for (const name of await readdir(binfmt)) {
    const pid = name.startsWith(entryPrefix) ? Number(name.slice(entryPrefix.length)) : 0;
    if (pid && !alive(pid)) await writeFile(join(binfmt, name), '-1');
  }
  const debianEntry = await readFile('/usr/share/binfmts/qemu-aarch64', 'utf8');
  const field = (key: string) => {
    const value = new RegExp(`^${key} (.*)$`, 'm').exec(debianEntry)?.[1];
    if (!value) throw new Error(`no ${key} in /usr/share/binfmts/qemu-aarch64`);
    return value;
  };
  const name = `${entryPrefix}${process.pid}`;
  await writeFile(
    join(binfmt, 'register'),
    `:${name}:M:${field('offset')}:${field('magic')}:${field('mask')}:${qemu}:F`,
  );
  return {
    async unregister() {
      if (existsSync(join(binfmt, name))) await writeFile(join(binfmt, name), '-1');
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export interface InRootfs {
  /** A user of the root filesystem to run as (chroot --userspec), else root. */
  readonly user?: string;
  readonly timeoutMs?: number;
}

/** A root filesystem in a temp directory, and programs run in it. */
export class Rootfs {
  private constructor(readonly dir: string) {}

  static async empty(): Promise<Rootfs> {
    return new Rootfs(await mkdtemp(join(tmpdir(), 'vouch-rootfs-')));
  }

  /** A fresh copy of `tarball`. */
  static async unpack(tarball: string): Promise<Rootfs> {
    const rootfs = await Rootfs.empty();
    await runOk('tar', ['-C', rootfs.dir, '--numeric-owner', '-xf', tarball], 5 * 60_000);
    // A root directory as a system's (the temp directory's 0700 would stop every user but
    // root at the first path lookup).
    await chmod(rootfs.dir, 0o755);
    return rootfs;
  }

  /** The host's path of `path` in the root filesystem. */
  path(path: string): string {
    return join(this.dir, path);
  }

  read(path: string): Promise<string> {
    return readFile(this.path(path), 'utf8').catch(() => '');
  }

  /** The command line that runs `argv` in the root filesystem, with /proc mounted. */
  private command(argv: readonly string[], user?: string): [string, string[]] {
    const userspec = user ? [`--userspec=${user}:${user}`] : [];
    // unshare's default propagation is private: the mount is never seen outside.
    return [
      'unshare',
      [`--mount-proc=${this.path('proc')}`, 'chroot', ...userspec, this.dir, ...argv],
    ];
  }

  run(argv: readonly string[], { user, timeoutMs = 120_000 }: InRootfs = {}): Promise<Result> {
    const [file, args] = this.command(argv, user);
    return run(file, args, timeoutMs, chrootEnv);
  }

  runOk(argv: readonly string[], { user, timeoutMs = 120_000 }: InRootfs = {}): Promise<Result> {
    const [file, args] = this.command(argv, user);
    return runOk(file, args, timeoutMs, chrootEnv);
  }

  /** Starts `argv` in the root filesystem in a process group of its own, its stderr piped. */
  start(argv: readonly string[], { user }: InRootfs = {}): ChildProcess {
    const [file, args] = this.command(argv, user);
    return spawn(file, args, {
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
      env: chrootEnv,
    });
  }

  /**
   * Kills what still runs in the root filesystem, unmounts what is still mounted in it, and
   * removes it; refuses to remove it while anything is mounted there (rm would go into it).
   */
  async remove(): Promise<void> {
    await waitFor(
      `the processes in ${this.dir} to end`,
      async () => {
        const left = await this.processes();
        for (const pid of left) killPid(pid);
        return left.length === 0;
      },
      10_000,
    );
    for (const mount of (await this.mounts()).reverse()) {
      await run('umount', ['--lazy', mount], 10_000);
    }
    const mounted = await this.mounts();
    if (mounted.length > 0) {
      throw new Error(`still mounted, so ${this.dir} is left in place: ${mounted.join(', ')}`);
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  /** Processes whose root directory is in the root filesystem (chrooted there). */
  private async processes(): Promise<number[]> {
    const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name));
    const inside: number[] = [];
    for (const pid of pids) {
      const root = await readlink(`/proc/${pid}/root`).catch(() => '');
      if (root === this.dir || root.startsWith(`${this.dir}/`)) inside.push(Number(pid));
    }
    return inside;
  }

  /** Mount points in the root filesystem, in this mount namespace (proc(5) mountinfo). */
  private async mounts(): Promise<string[]> {
    const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
    return mountinfo
      .split('\n')
      .map((line) => line.split(' ')[4] ?? '')
      .filter((point) => point === this.dir || point.startsWith(`${this.dir}/`));
  }
}

function killPid(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
