import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { VouchError } from '../../core/errors';
import { generateKey, isValidKeyName, namePublicKey, verifierString } from '../../core/keys';
import { makeDirectory, requireAbsent, writeFileDurably } from '../../files';
import { ExitCode } from '../exit';
import type { Act } from '../program';

export function keygenCommand(act: Act): Command {
  return new Command('keygen')
    .description(
      'make an Ed25519 key pair: <dir>/<id>.key (PKCS#8 PEM, mode 0600) and <dir>/<id>.pub ' +
        '(SPKI PEM); prints the public key as a verifier string',
    )
    .requiredOption('--signer <id>', 'the key name: a signer ID, a root key name or a log origin')
    .requiredOption('--out <dir>', 'directory for the two files (created when missing)')
    .action(
      act(async (_ctx, options: { signer: string; out: string }) => {
        if (!isValidKeyName(options.signer)) {
          throw new VouchError('USAGE', `--signer ${options.signer}: no spaces or '+'`);
        }
        if (options.signer.includes('/')) {
          throw new VouchError('USAGE', `--signer ${options.signer}: no '/' (it names files)`);
        }
        const privatePath = join(options.out, `${options.signer}.key`);
        const publicPath = join(options.out, `${options.signer}.pub`);
        requireAbsent([privatePath, publicPath]);
        await makeDirectory(options.out);
        const { privatePem, publicPem, key } = generateKey();
        await writeFileDurably(privatePath, privatePem, { mode: 0o600, exclusive: true });
        try {
          await writeFileDurably(publicPath, publicPem, { exclusive: true });
        } catch (error) {
          // Nothing is left behind on error, not even half a key pair.
          await unlink(privatePath);
          throw error;
        }
        const verifier = verifierString(namePublicKey(options.signer, key.raw));
        return {
          exitCode: ExitCode.OK,
          data: {
            signer: options.signer,
            privateKey: privatePath,
            publicKey: publicPath,
            verifier,
          },
          text: verifier,
        };
      }),
    );
}
