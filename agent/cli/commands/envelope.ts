import { Command, Option } from 'commander';
import {
  maxEnvelopeBytes,
  parseEnvelope,
  requirePayloadType,
  verifyEnvelope,
} from '../../core/dsse';
import { VouchError } from '../../core/errors';
import { verifierString } from '../../core/keys';
import { parseStatement, statementPayloadType } from '../../core/statement';
import { readExistingFile } from '../../files';
import { ExitCode } from '../exit';
import { readPublicKey } from '../files';
import { positiveInteger, repeatable } from '../options';
import type { Act } from '../program';

export function envelopeCommand(act: Act): Command {
  const envelope = new Command('envelope').description('DSSE envelopes holding statements');
  envelope
    .command('verify')
    .description(
      'check that a statement envelope is signed by the given key(s): exit 0 when valid, ' +
        '1 when not, 65 when the envelope is malformed',
    )
    .argument('<envelope>', 'the envelope file (JSON)')
    .requiredOption(
      '--key <pub>',
      'a public key: verifier string, or a file with one or an SPKI PEM (repeatable)',
      repeatable,
    )
    .addOption(
      new Option('--threshold <n>', 'how many distinct keys must have signed')
        .argParser(positiveInteger)
        .default(1),
    )
    .action(
      act(async (_ctx, path: string, options: { key: string[]; threshold: number }) => {
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
            text: `${path}: not valid: ${error.message}`,
          };
        }
        // Parse the bytes that were verified, never a re-encoding of them.
        const statement = parseStatement(verified.payload);
        const signedBy = verified.keys.map(verifierString);
        return {
          exitCode: ExitCode.OK,
          data: { valid: true, signedBy, statement },
          text: [
            `${path}: valid, signed by ${verified.keys.map((key) => key.name).join(', ')}`,
            `${statement.status} by ${statement.signer} at ${statement.issuedAt}${statement.reason ? ` (${statement.reason})` : ''}`,
            ...statement.subjects.map((subject) => `  ${subject.name} sha256:${subject.sha256}`),
          ].join('\n'),
        };
      }),
    );
  return envelope;
}
