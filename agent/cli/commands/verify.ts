import { stat } from 'node:fs/promises';
import { Command } from 'commander';
import type Docker from 'dockerode';
import { errorKinds } from '../../core/errors';
import { merkleAlgorithm } from '../../core/statement';
import type { StatusName } from '../../core/status';
import { dockerClient } from '../../device/docker/client';
import { deepPool } from '../../device/docker/deep';
import { type ImageResult, verifyImage } from '../../device/docker/image';
import type { DigestChoice } from '../../device/verify/chunked';
import {
  type OpenedTrust,
  openTrust,
  parseSubjectDigest,
  type Subject,
  type SubjectResult,
  type TrustSummary,
  type VerifyReport,
  verifySubjects,
} from '../../device/verify/verify';
import type { Context } from '../context';
import { ExitCode, exitCodeFor } from '../exit';
import type { Act } from '../program';

/** Worst first: the exit code of several subjects is the status of the worst. */
const severity: readonly StatusName[] = [
  'REVOKED',
  'UNTRUSTED',
  'UNSUPPORTED',
  'UNKNOWN',
  'TRUSTED',
];

/**
 * The exit code for a set of results: a subject that could not be checked decides (the
 * first such, by its error's kind: 69 no trust state or expired root, 74 unreadable file,
 * 65 damaged state), since then no status holds for the whole set; otherwise the worst
 * status, REVOKED > UNTRUSTED > UNSUPPORTED > UNKNOWN > TRUSTED, as its CAS number.
 */
export function exitCodeOf(results: readonly Pick<SubjectResult, 'status' | 'error'>[]): ExitCode {
  const failed = results.find((result) => result.error);
  if (failed?.error) return exitCodeFor(errorKinds[failed.error.code]);
  const worst = severity.find((name) => results.some((result) => result.status === name));
  return ExitCode[worst ?? 'TRUSTED'];
}

function describe(report: VerifyReport): string {
  const lines = report.results.map((result) => {
    // The digest looked up, after a file's path (a given digest is the subject already).
    const hex = result.digest === merkleAlgorithm ? result.merkle : result.sha256;
    const prefix = `${result.digest}:`;
    const digest = result.digest && !result.subject.startsWith(prefix) ? ` ${prefix}${hex}` : '';
    const outcome = result.status ?? 'COULD NOT CHECK';
    const why = result.error?.message ?? result.reason;
    return `${outcome} ${result.subject}${digest}: ${why}`;
  });
  return describeState(lines, report).join('\n');
}

/** The result lines, and a warning when they come from stale trust data. */
function describeState(lines: string[], summary: TrustSummary): string[] {
  if (summary.stale && summary.state === 'ok') {
    lines.push(
      `warning: the trust state is stale (fresh since ${summary.freshSince ?? 'never'}); run vouch sync`,
    );
  }
  return lines;
}

/** Files over this size get a progress bar, when stderr is a terminal. */
const progressThreshold = 64 * 2 ** 20;

/**
 * One line on stderr, redrawn at most every 100 ms: the file being read and how far. Only
 * on a TTY (a log or a pipe gets no carriage returns) and for files over 64 MiB.
 */
async function progressBar(
  ctx: Context,
  paths: readonly string[],
): Promise<{ update: (path: string, bytes: number) => void; done: () => void } | undefined> {
  if (!process.stderr.isTTY) return undefined;
  const sizes = new Map<string, number>();
  for (const path of paths) {
    const size = await stat(path).then(
      (info) => info.size,
      () => 0,
    );
    if (size > progressThreshold) sizes.set(path, size);
  }
  if (sizes.size === 0) return undefined;
  let last = 0;
  let drawn = false;
  return {
    update(path, bytes) {
      const size = sizes.get(path);
      const now = Date.now();
      if (size === undefined || now - last < 100) return;
      last = now;
      drawn = true;
      ctx.io.stderr(`\r\x1b[K${progressLine(path, bytes, size, process.stderr.columns || 80)}`);
    },
    done() {
      if (drawn) ctx.io.stderr('\r\x1b[K');
    },
  };
}

/** `name [#####-----]  50% 512/1024 MiB`, fitted to `columns`. */
export function progressLine(path: string, bytes: number, size: number, columns: number): string {
  const MiB = 2 ** 20;
  const fraction = size > 0 ? Math.min(1, bytes / size) : 1;
  const tail = ` ${String(Math.floor(fraction * 100)).padStart(3)}% ${Math.floor(bytes / MiB)}/${Math.floor(size / MiB)} MiB`;
  const width = 20;
  const filled = Math.round(fraction * width);
  const bar = ` [${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const room = Math.max(8, columns - 1 - bar.length - tail.length);
  const name = path.length > room ? `…${path.slice(path.length - room + 1)}` : path;
  return `${name}${bar}${tail}`;
}

async function verifyCommandBody(ctx: Context, subjects: Subject[], digest?: DigestChoice) {
  const paths = subjects.flatMap((subject) => ('file' in subject ? [subject.file] : []));
  const progress = await progressBar(ctx, paths);
  let report: VerifyReport;
  try {
    report = await verifySubjects(subjects, {
      stateDir: ctx.config.stateDir,
      maxAge: ctx.config.sync.maxAge,
      ...(progress && { onProgress: progress.update }),
      ...(digest && { digest }),
    });
  } finally {
    progress?.done();
  }
  const exitCode = exitCodeOf(report.results);
  return { exitCode, data: { ...report, exitCode }, text: describe(report) };
}

interface ImageOptions {
  readonly deep?: boolean;
  readonly tree?: boolean;
}

async function verifyImagesBody(ctx: Context, refs: string[], options: ImageOptions) {
  // dockerode and, for --deep, the hash pool's workers load while the trust state does.
  const starting = options.deep ? deepPool() : undefined;
  starting?.catch(() => {}); // awaited below: a failure is not unhandled meanwhile
  const results: ImageResult[] = [];
  let trust: OpenedTrust;
  try {
    let docker: Docker;
    [trust, docker] = await Promise.all([
      openTrust(ctx.config.stateDir, ctx.config.sync.maxAge),
      dockerClient(ctx.io.env, ctx.config.docker.socket),
    ]);
    const pool = await starting;
    // One at a time: exports of several images would only compete for the same disk.
    for (const ref of refs) {
      results.push(
        await verifyImage(docker, trust.state, ref, {
          policy: ctx.config.images,
          now: trust.now,
          ...(options.deep && { deep: true }),
          ...(options.tree && { tree: true }),
          ...(pool && { pool }),
          ...(trust.error && { stateError: trust.error }),
        }),
      );
    }
  } finally {
    await (await starting?.catch(() => undefined))?.close();
  }
  const exitCode = exitCodeOf(results);
  const lines = results.map((result) => {
    const id = result.id ? ` ${result.id}` : '';
    const deep = result.deep?.matches
      ? ` (content matches: config and ${result.deep.layers.length} layers, ${result.deep.layout} layout)`
      : '';
    const tree = result.tree?.matches
      ? ` (files on disk match: ${result.tree.layers.length} layers, ${result.tree.driver} storage)`
      : '';
    return `${result.status ?? 'COULD NOT CHECK'} ${result.ref}${id}: ${result.error?.message ?? result.reason}${deep}${tree}`;
  });
  const report = { ...trust.summary, results };
  return {
    exitCode,
    data: { ...report, exitCode },
    text: describeState(lines, report).join('\n'),
  };
}

export function verifyCommand(act: Act): Command {
  return new Command('verify')
    .description(
      'verify files or digests against the local trust state (no network): status, signer, ' +
        'log index and reasons; the exit code is the worst status',
    )
    .addCommand(
      new Command('file')
        .description(
          'hash each file on this device and look it up: files of 64 MiB or more by their ' +
            `chunked digest (${merkleAlgorithm}, on all cores) first when the trust state ` +
            'has any, then by SHA-256',
        )
        .argument('<paths...>', 'files to verify')
        .option('--chunked', `look files up by their ${merkleAlgorithm} digest only`)
        .action(
          act((ctx, paths: string[], options: { chunked?: boolean }) =>
            verifyCommandBody(
              ctx,
              paths.map((file) => ({ file })),
              options.chunked ? 'chunked' : 'auto',
            ),
          ),
        ),
    )
    .addCommand(
      new Command('digest')
        .description('look digests up, as given')
        .argument(
          '<digests...>',
          `sha256:<64 hex> (or bare hex) or ${merkleAlgorithm}:<64 hex> each`,
        )
        .action(
          act((ctx, digests: string[]) => verifyCommandBody(ctx, digests.map(parseSubjectDigest))),
        ),
    )
    .addCommand(
      new Command('image')
        .description(
          'verify local Docker images: statements about the image ID (config digest) or any ' +
            'repo digest count. The first images.scopes rule whose glob matches one of its ' +
            'names decides which signer counts and makes a statement required (default: ' +
            'ghcr.io/home-assistant/** needs notary@home-assistant.io); other images take any ' +
            'authorized signer, a statement optional unless images.strict. Docker: ' +
            'DOCKER_HOST, else docker.socket, else /var/run/docker.sock',
        )
        .argument('<refs...>', 'image names (ubuntu, ghcr.io/x/y:1) or image IDs')
        .option(
          '--deep',
          'also export each image (as docker save does, streamed) and hash its config and ' +
            'every layer on this device: the config must hash to the image ID and each layer ' +
            'to its diff_id, else UNTRUSTED ("content does not match image ID"); a file ' +
            "added to a layer's directory on disk is not in the export and not caught: --tree catches it",
        )
        .option(
          '--tree',
          "also compare each layer's directory in Docker's storage with the layer's file " +
            'list (its tar-split record): a file added, removed or changed on disk (type, ' +
            'size, CRC-64, symlink target; not permissions, owners or times) is UNTRUSTED. ' +
            'Needs root on the host dockerd runs on; vfs and overlay2 storage drivers only, ' +
            'else could not check. The file lists are not signed: use with --deep, which ' +
            'ties them to the image ID',
        )
        .action(
          act((ctx, refs: string[], options: ImageOptions) => verifyImagesBody(ctx, refs, options)),
        ),
    );
}
