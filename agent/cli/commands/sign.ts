import { Command, Option } from 'commander';
import {
  merkleAlgorithm,
  type StatementStatus,
  statementStatuses,
} from '../../core/statement-names';
import { examples } from '../help';
import { repeatable } from '../options';
import type { Act } from '../program';

/** `vouch sign`, and the Codenotary CAS verbs with their status preset. */
export function signCommands(act: Act): Command[] {
  return [
    signCommand(act, 'sign', undefined),
    signCommand(act, 'notarize', 'trusted'),
    signCommand(act, 'untrust', 'untrusted'),
    signCommand(act, 'unsupport', 'unsupported'),
  ];
}

function signCommand(act: Act, name: string, preset: StatementStatus | undefined): Command {
  const command = new Command(name)
    .description(
      preset
        ? `sign a statement that marks a file, digest or image ${preset} (vouch sign --status ${preset})`
        : 'sign a statement about a file, digest or Docker image: a DSSE envelope holding an in-toto Statement v1',
    )
    .requiredOption('--key <file>', 'the signer’s private key (PKCS#8 PEM, mode 0600)')
    .requiredOption('--signer <id>', 'the signer ID, as listed in the trust root')
    .option(
      '--file <path>',
      'a subject: this file, named by its base name (repeatable: one statement for all)',
      repeatable,
    )
    .option(
      '--chunked',
      `with --file: also record its chunked digest (${merkleAlgorithm}), so that devices verify it on all cores`,
    )
    .option(
      '--digest <sha256:hex>',
      'a subject: this digest, named by a --name (repeatable, each with its --name)',
      repeatable,
    )
    .option(
      '--image <ref>',
      'a subject: this local Docker image, its image ID and repo digests (repeatable)',
      repeatable,
    )
    .option(
      '--name <name>',
      'the name of each --digest, in order; or a new name for the one --file or --image',
      repeatable,
    )
    .option('--reason <text>', 'why, for people reading the log')
    .option('--out <file>', 'write the envelope here instead of stdout')
    .option(
      '--log <dir>',
      'add the statement to this log (checked against the root it serves) and publish it',
    )
    .option('--each', 'one envelope per --file, --digest or --image instead of one for all')
    .option('--out-dir <dir>', 'with --each: write <dir>/<subject name>.json for each')
    .addHelpText('after', signExamples(name));
  if (!preset) {
    command.addOption(
      new Option('--status <status>', 'what the statement says')
        .choices(statementStatuses)
        .default('trusted'),
    );
  }
  return command.action(act(async () => (await import('../actions/sign')).signAs(preset)));
}

function signExamples(name: string): string {
  const signer = `vouch ${name} --key dev.key --signer dev@example.org`;
  if (name !== 'sign') return examples(`${signer} --file app.tgz`);
  return examples(
    [signer, '--file app-arm64.tgz --file app-armv7.tgz --out release.json'],
    `${signer} --image ghcr.io/me/app:1.0`,
    [`${signer} --file app.tgz`, "--status revoked --reason 'leaked key' --out revoke.json"],
  );
}
