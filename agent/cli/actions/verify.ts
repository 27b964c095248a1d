import { stat } from 'node:fs/promises';
import { exitCodeOf } from '../../core/exit-codes';
import { merkleAlgorithm } from '../../core/statement';
import { escapeText, safe } from '../../core/text';
import {
  type DigestChoice,
  parseSubjectDigest,
  type Subject,
  type TrustSummary,
  type VerifyReport,
  verifySubjects,
} from '../../device/verify';
import { fsPath } from '../../files';
import type { Context } from '../context';

function describe(report: VerifyReport): string {
  const lines = report.results.map((result) => {
    // The digest looked up, after a file's path (a given digest is the subject already).
    const hex = result.digest === merkleAlgorithm ? result.merkle : result.sha256;
    const prefix = `${result.digest}:`;
    const digest = result.digest && !result.subject.startsWith(prefix) ? ` ${prefix}${hex}` : '';
    const outcome = result.status ?? 'COULD NOT CHECK';
    const why = result.error?.message ?? result.reason;
    return safe`${outcome} ${result.subject}${digest}: ${why}`;
  });
  return describeState(lines, report).join('\n');
}

/** The result lines, and a warning when they come from stale trust data. */
export function describeState(lines: string[], summary: TrustSummary): string[] {
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
    const size = await stat(fsPath(path)).then(
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
  const shown = escapeText(path);
  const name = shown.length > room ? `…${shown.slice(shown.length - room + 1)}` : shown;
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

export function verifyFiles(ctx: Context, paths: string[], options: { chunked?: boolean }) {
  return verifyCommandBody(
    ctx,
    paths.map((file) => ({ file })),
    options.chunked ? 'chunked' : 'auto',
  );
}

export function verifyDigests(ctx: Context, digests: string[]) {
  return verifyCommandBody(ctx, digests.map(parseSubjectDigest));
}
