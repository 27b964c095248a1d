import {
  maxEnvelopeBytes,
  parseEnvelope,
  requirePayloadType,
  verifyEnvelope,
} from '../../core/dsse';
import { VouchError } from '../../core/errors';
import { ExitCode } from '../../core/exit-codes';
import { verifierString } from '../../core/keys';
import { parseStatement, statementPayloadType } from '../../core/statement';
import { safe } from '../../core/text';
import { readExistingFile } from '../../files';
import type { Context } from '../context';
import { readPublicKey } from '../files';

export async function envelopeVerify(
  _ctx: Context,
  path: string,
  options: { key: string[]; threshold: number },
) {
  const keys = await Promise.all(options.key.map((arg) => readPublicKey(arg)));
  const parsed = parseEnvelope(await readExistingFile(path, maxEnvelopeBytes, 'envelope'));
  requirePayloadType(parsed, statementPayloadType);
  let verified: ReturnType<typeof verifyEnvelope>;
  try {
    verified = verifyEnvelope(parsed, keys, options.threshold);
  } catch (error) {
    if (!(error instanceof VouchError && error.code === 'SIGNATURE_INVALID')) throw error;
    return {
      exitCode: ExitCode.UNTRUSTED,
      data: { valid: false, code: error.code, reason: error.message },
      text: safe`${path}: not valid: ${error.message}`,
    };
  }
  // Parse the bytes that were verified, never a re-encoding of them.
  const statement = parseStatement(verified.payload);
  const signedBy = verified.keys.map(verifierString);
  return {
    exitCode: ExitCode.OK,
    data: { valid: true, signedBy, statement },
    text: [
      safe`${path}: valid, signed by ${verified.keys.map((key) => key.name).join(', ')}`,
      safe`${statement.status} by ${statement.signer} at ${statement.issuedAt}${statement.reason ? ` (${statement.reason})` : ''}`,
      ...statement.subjects.map((subject) => safe`  ${subject.name} sha256:${subject.sha256}`),
    ].join('\n'),
  };
}
