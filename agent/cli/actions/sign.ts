import { unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileDigests } from '../../content/digests';
import { dockerClient, imageSubjects } from '../../content/docker';
import { parseSha256 } from '../../core/digest';
import { serializeEnvelope, signEnvelope } from '../../core/dsse';
import { toHex } from '../../core/encoding';
import { VouchError } from '../../core/errors';
import { ExitCode } from '../../core/exit-codes';
import { isValidKeyName, KeyType, keyIdOf, type PrivateKey } from '../../core/keys';
import {
  encodeStatement,
  merkleAlgorithm,
  type StatementStatus,
  type Subject,
  statementPayloadType,
} from '../../core/statement';
import { hasEscapedBytes } from '../../core/surrogate-escape';
import { safe } from '../../core/text';
import { fsPath, makeDirectory, requireAbsent, writeFileDurably } from '../../files';
import type { Context, Report } from '../context';
import { readPrivateKeyFile, sha256File } from '../files';
import type { Action } from '../program';

interface SignOptions {
  readonly key: string;
  readonly signer: string;
  readonly file?: readonly string[];
  readonly chunked?: boolean;
  readonly digest?: readonly string[];
  readonly image?: readonly string[];
  readonly name?: readonly string[];
  readonly status?: StatementStatus;
  readonly reason?: string;
  readonly out?: string;
  readonly log?: string;
  readonly each?: boolean;
  readonly outDir?: string;
}

/**
 * What one `--file`, `--digest` or `--image` names: one subject, or an image's ID and repo
 * digests. A release is one statement over every group; `--each` signs one per group.
 */
interface SubjectGroup {
  readonly given: string;
  readonly subjects: readonly Subject[];
}

/** The action of `vouch sign`, or of a CAS verb that presets the status. */
export function signAs(preset: StatementStatus | undefined): Action<[SignOptions]> {
  return async (ctx, options) => {
    const status = preset ?? options.status ?? 'trusted';
    if (!isValidKeyName(options.signer)) {
      throw new VouchError('USAGE', `--signer ${options.signer}: no spaces or '+'`);
    }
    checkOutputs(options);
    const key = await readPrivateKeyFile(options.key);
    const groups = await subjectGroups(ctx, options);
    refuseNonUtf8(groups, options.reason);
    const says = { status, signer: options.signer, reason: options.reason };
    const sign = (subjects: readonly Subject[]) => signStatement(key, { ...says, subjects });
    if (options.each) return writeEach(groups, sign, options.outDir as string, says);
    const subjects = groups.flatMap((group) => group.subjects);
    refuseDuplicates(subjects);
    const envelope = sign(subjects);
    // Logged first: a statement the log refuses leaves no --out file that looks accepted.
    const inLog =
      options.log === undefined
        ? undefined
        : await logged(options.log, envelope, { ...says, subjects });
    if (options.out !== undefined) await writeFileDurably(options.out, envelope);
    if (inLog) return inLog;
    if (options.out === undefined) {
      return { exitCode: ExitCode.OK, data: JSON.parse(envelope), text: envelope };
    }
    const written = { out: options.out, status, signer: options.signer, subjects };
    return {
      exitCode: ExitCode.OK,
      data: written,
      text: safe`${options.out}: ${describe(written)}`,
    };
  };
}

/** `--log DIR`: the envelope appended to the log and published (agent/cli/actions/log.ts). */
async function logged(
  dir: string,
  envelope: string,
  statement: Says & { readonly subjects: readonly Subject[] },
): Promise<Report> {
  const { appendToLog } = await import('./log');
  const result = await appendToLog(dir, [Buffer.from(envelope)], {
    publish: true,
    names: ['the statement'],
  });
  const { index } = result.entries[0] as { index: number };
  return {
    exitCode: ExitCode.OK,
    data: { log: dir, index, size: result.size, ...statement },
    text: safe`${dir} entry ${index}: ${describe(statement)}; published (size ${result.size})`,
  };
}

function checkOutputs(options: SignOptions): void {
  if (options.each && options.outDir === undefined) {
    throw new VouchError('USAGE', '--each writes one envelope per subject: give --out-dir DIR');
  }
  if (options.outDir !== undefined && !options.each) {
    throw new VouchError('USAGE', '--out-dir goes with --each (one envelope per subject)');
  }
  if (options.each && options.log !== undefined) {
    throw new VouchError('USAGE', '--log takes one statement; --each writes files to --out-dir');
  }
  if (options.each && options.out !== undefined) {
    throw new VouchError('USAGE', '--each writes into --out-dir; --out is for one envelope');
  }
}

/** What every statement of one `vouch sign` says. */
interface Says {
  readonly status: StatementStatus;
  readonly signer: string;
  readonly reason: string | undefined;
}

function signStatement(
  key: PrivateKey,
  statement: Says & { readonly subjects: readonly Subject[] },
): string {
  const payload = encodeStatement({ ...statement, issuedAt: new Date() });
  // The keyid hint is the key ID of the signer's verifier string (unsigned, DSSE envelope.md).
  const keyid = toHex(keyIdOf(statement.signer, KeyType.Ed25519, key.raw));
  return serializeEnvelope(signEnvelope(statementPayloadType, payload, key, keyid));
}

/** `--each`: one envelope per group, `<out-dir>/<subject name>.json`; all or nothing written. */
async function writeEach(
  groups: readonly SubjectGroup[],
  sign: (subjects: readonly Subject[]) => string,
  outDir: string,
  says: Says,
): Promise<Report> {
  const paths = groups.map((group) => join(outDir, fileNameFor(group)));
  const clash = paths.findIndex((path, at) => paths.indexOf(path) !== at);
  if (clash !== -1) {
    const first = groups[paths.indexOf(paths[clash] as string)]?.given;
    throw new VouchError(
      'USAGE',
      `${first} and ${groups[clash]?.given} would both be written to ${paths[clash]}; sign them separately`,
    );
  }
  requireAbsent(paths);
  await makeDirectory(outDir);
  const written: Written[] = [];
  try {
    for (const [at, group] of groups.entries()) {
      const out = paths[at] as string;
      await writeFileDurably(out, sign(group.subjects), { exclusive: true });
      written.push({ out, status: says.status, signer: says.signer, subjects: group.subjects });
    }
  } catch (error) {
    await Promise.all(written.map(({ out }) => unlink(fsPath(out)).catch(() => {})));
    throw error;
  }
  return {
    exitCode: ExitCode.OK,
    data: { outDir, envelopes: written },
    text: written.map((envelope) => safe`${envelope.out}: ${describe(envelope)}`).join('\n'),
  };
}

/** A file name from the first subject's name: `ghcr.io/x/y:1.0` → `ghcr.io_x_y_1.0.json`. */
function fileNameFor(group: SubjectGroup): string {
  const name = (group.subjects[0] as Subject).name.replace(/[^A-Za-z0-9._@+-]/g, '_');
  return `${name.replace(/^\./, '_')}.json`;
}

interface Written extends Omit<Says, 'reason'> {
  readonly out: string;
  readonly subjects: readonly Subject[];
}

/** `trusted by dev for app.txt (sha256:…)`: what a statement says, in one line. */
function describe({ status, signer, subjects }: Omit<Written, 'out'>): string {
  const named = subjects.map(
    ({ name, sha256, merkle }) =>
      `${name} (sha256:${sha256}${merkle ? `, ${merkleAlgorithm}:${merkle}` : ''})`,
  );
  return `${status} by ${signer} for ${named.join(', ')}`;
}

/** A statement is UTF-8 JSON: an argument whose bytes are not UTF-8 cannot go into one. */
function refuseNonUtf8(groups: readonly SubjectGroup[], reason: string | undefined): void {
  const names = groups.flatMap((group) => group.subjects.map(({ name }) => name));
  const notUtf8 = [...names, reason ?? ''].find(hasEscapedBytes);
  if (notUtf8 !== undefined) {
    throw new VouchError(
      'USAGE',
      `not UTF-8, as a statement must be: ${notUtf8} (a file's subject can be named with --name)`,
    );
  }
}

/** The same subject twice in one statement is a mistake on the command line, not a release. */
function refuseDuplicates(subjects: readonly Subject[]): void {
  const seen = new Set<string>();
  for (const { name, sha256 } of subjects) {
    const key = `${name}\n${sha256}`;
    if (seen.has(key)) {
      throw new VouchError('USAGE', `${name} (sha256:${sha256}) is given twice`);
    }
    seen.add(key);
  }
}

/**
 * The subjects, grouped by the option that named them: files, then digests, then images.
 * Names: one `--name` per `--digest`, in order; without `--digest`, a `--name` renames the
 * one `--file` or `--image` given.
 */
async function subjectGroups(ctx: Context, options: SignOptions): Promise<SubjectGroup[]> {
  const files = options.file ?? [];
  const digests = options.digest ?? [];
  const images = options.image ?? [];
  const names = options.name ?? [];
  if (files.length + digests.length + images.length === 0) {
    throw new VouchError(
      'USAGE',
      'give what to sign: --file, --digest or --image (each repeatable)',
    );
  }
  if (options.chunked && files.length === 0) {
    throw new VouchError('USAGE', '--chunked goes with --file');
  }
  if (digests.length > 0 && names.length !== digests.length) {
    throw new VouchError(
      'USAGE',
      `each --digest needs its --name, in the same order (${digests.length} --digest, ${names.length} --name)`,
    );
  }
  if (digests.length === 0 && names.length > 0 && files.length + images.length !== 1) {
    throw new VouchError(
      'USAGE',
      '--name names a --digest, or the one --file or --image given; with several, each keeps its own name',
    );
  }
  const rename = digests.length === 0 ? names[0] : undefined;
  const groups: SubjectGroup[] = [];
  const merkles = options.chunked ? await fileDigests(files) : undefined;
  for (const [at, path] of files.entries()) {
    const name = rename ?? basename(path);
    const chunked = merkles?.[at];
    groups.push({
      given: `--file ${path}`,
      subjects: [
        chunked
          ? { name, sha256: chunked.sha256, merkle: chunked.merkle }
          : { name, sha256: await sha256File(path) },
      ],
    });
  }
  for (const [at, digest] of digests.entries()) {
    groups.push({
      given: `--digest ${digest}`,
      subjects: [{ name: names[at] as string, sha256: parseSha256(digest) }],
    });
  }
  if (images.length > 0) {
    const docker = await dockerClient(ctx.io.env, ctx.config.docker.socket);
    for (const ref of images) {
      groups.push({ given: `--image ${ref}`, subjects: await imageSubjects(docker, ref, rename) });
    }
  }
  return groups;
}
