import { basename } from 'node:path';
import { parseSha256 } from '../../core/digest';
import { serializeEnvelope, signEnvelope } from '../../core/dsse';
import { toHex } from '../../core/encoding';
import { VouchError } from '../../core/errors';
import { isValidKeyName, KeyType, keyIdOf } from '../../core/keys';
import {
  encodeStatement,
  merkleAlgorithm,
  type StatementStatus,
  type Subject,
  statementPayloadType,
} from '../../core/statement';
import { hasEscapedBytes } from '../../core/surrogate-escape';
import { safe } from '../../core/text';
import { dockerClient, imageSubjects } from '../../device/docker/client';
import { fileDigests } from '../../device/verify/chunked';
import { writeFileDurably } from '../../files';
import type { Context } from '../context';
import { ExitCode } from '../exit';
import { readPrivateKeyFile, sha256File } from '../files';
import type { Action } from '../program';

interface SignOptions {
  readonly key: string;
  readonly signer: string;
  readonly file?: string;
  readonly chunked?: boolean;
  readonly digest?: string;
  readonly image?: string;
  readonly name?: string;
  readonly status?: StatementStatus;
  readonly reason?: string;
  readonly out?: string;
}

/** The action of `vouch sign`, or of a CAS verb that presets the status. */
export function signAs(preset: StatementStatus | undefined): Action<[SignOptions]> {
  return async (ctx, options) => {
    const status = preset ?? options.status ?? 'trusted';
    if (!isValidKeyName(options.signer)) {
      throw new VouchError('USAGE', `--signer ${options.signer}: no spaces or '+'`);
    }
    const key = await readPrivateKeyFile(options.key);
    const subjects = await subjectsFor(ctx, options);
    // A statement is UTF-8 JSON: an argument whose bytes are not UTF-8 cannot go into one.
    const notUtf8 = [...subjects.map(({ name }) => name), options.reason ?? ''].find(
      hasEscapedBytes,
    );
    if (notUtf8 !== undefined) {
      throw new VouchError(
        'USAGE',
        `not UTF-8, as a statement must be: ${notUtf8} (a file's subject can be named with --name)`,
      );
    }
    const payload = encodeStatement({
      subjects,
      status,
      signer: options.signer,
      issuedAt: new Date(),
      reason: options.reason,
    });
    // The keyid hint is the key ID of the signer's verifier string (unsigned, DSSE envelope.md).
    const keyid = toHex(keyIdOf(options.signer, KeyType.Ed25519, key.raw));
    const envelope = serializeEnvelope(signEnvelope(statementPayloadType, payload, key, keyid));
    const summary = { status, signer: options.signer, subjects };
    if (options.out === undefined) {
      return { exitCode: ExitCode.OK, data: JSON.parse(envelope), text: envelope };
    }
    await writeFileDurably(options.out, envelope);
    return {
      exitCode: ExitCode.OK,
      data: { out: options.out, ...summary },
      text: safe`${options.out}: ${status} by ${options.signer} for ${subjects
        .map(
          ({ name, sha256, merkle }) =>
            `${name} (sha256:${sha256}${merkle ? `, ${merkleAlgorithm}:${merkle}` : ''})`,
        )
        .join(', ')}`,
    };
  };
}

async function subjectsFor(ctx: Context, options: SignOptions): Promise<Subject[]> {
  const given = [options.file, options.digest, options.image].filter(
    (value) => value !== undefined,
  );
  if (given.length !== 1) {
    throw new VouchError('USAGE', 'give exactly one of --file, --digest or --image');
  }
  if (options.chunked && options.file === undefined) {
    throw new VouchError('USAGE', '--chunked goes with --file');
  }
  if (options.file !== undefined) {
    const name = options.name ?? basename(options.file);
    if (options.chunked) {
      const { sha256, merkle } = await fileDigests(options.file);
      return [{ name, sha256, merkle }];
    }
    return [{ name, sha256: await sha256File(options.file) }];
  }
  if (options.digest !== undefined) {
    const sha256 = parseSha256(options.digest);
    if (options.name === undefined) throw new VouchError('USAGE', '--digest needs --name');
    return [{ name: options.name, sha256 }];
  }
  return imageSubjects(
    await dockerClient(ctx.io.env, ctx.config.docker.socket),
    options.image as string,
    options.name,
  );
}
