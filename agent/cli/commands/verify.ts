import { Command } from 'commander';
import { merkleAlgorithm } from '../../core/statement-names';
import { examples } from '../help';
import type { Act } from '../program';

export function verifyCommand(act: Act): Command {
  return new Command('verify')
    .description(
      'verify files or digests against the local trust state (no network): status, signer, ' +
        'log index and reasons; the exit code is the worst status',
    )
    .addHelpText(
      'after',
      examples(
        'vouch verify file app.tgz',
        [
          'vouch verify digest',
          'sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03',
        ],
        'vouch verify image ghcr.io/home-assistant/home-assistant:2025.6.0',
      ),
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
        .addHelpText(
          'after',
          examples(
            'vouch verify file app.tgz',
            'vouch verify file --chunked haos_rpi5-64-16.0.img.xz',
            'vouch verify file app.tgz lib.so -o json',
          ),
        )
        .action(act(async () => (await import('../actions/verify')).verifyFiles)),
    )
    .addCommand(
      new Command('digest')
        .description('look digests up, as given')
        .argument(
          '<digests...>',
          `sha256:<64 hex> (or bare hex) or ${merkleAlgorithm}:<64 hex> each`,
        )
        .addHelpText(
          'after',
          examples(
            [
              'vouch verify digest',
              'sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03',
            ],
            [
              'vouch verify digest -o json',
              '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03',
            ],
          ),
        )
        .action(act(async () => (await import('../actions/verify')).verifyDigests)),
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
        .addHelpText(
          'after',
          examples(
            'vouch verify image ghcr.io/home-assistant/home-assistant:2025.6.0',
            'vouch verify image --deep --tree homeassistant/amd64-addon-ssh:9.14',
            'vouch verify image sha256:5891b5b522d5 -o json',
          ),
        )
        .action(act(async () => (await import('../actions/verify-image')).verifyImages)),
    );
}
