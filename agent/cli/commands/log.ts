import { Command, InvalidArgumentError, Option } from 'commander';
import { examples } from '../help';
import type { Act } from '../program';

/** A tree size or entry index flag: a decimal without leading zeros, at most 2^53 − 1. */
function treeIndex(value: string): number {
  const number = Number(value);
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(value) || !Number.isSafeInteger(number)) {
    throw new InvalidArgumentError('expected an integer from 0 to 2^53-1');
  }
  return number;
}

/** `host:port` or `[v6 address]:port`. */
function listenAddress(value: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(0|[1-9][0-9]{0,4})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535) throw new InvalidArgumentError('expected host:port');
  return { host: (match[1] ?? match[2]) as string, port };
}

const initExample = 'vouch log init log --origin example.org/log --key log.key --root root.json';

export function logCommand(act: Act): Command {
  const log = new Command('log')
    .description(
      'run a transparency log: append signed statements, publish C2SP tlog-tiles and signed ' +
        'checkpoints, prove inclusion and consistency, cosign as a witness, serve over HTTP',
    )
    .addHelpText(
      'after',
      examples(initExample, 'vouch log add log --root root.json app.json', 'vouch log publish log'),
    );

  log
    .command('init')
    .description("create a log in an empty directory; prints the log's verifier string")
    .argument('<dir>', 'the log directory (absent or empty)')
    .requiredOption('--origin <origin>', 'the checkpoint origin, e.g. example.com/vouch')
    .requiredOption(
      '--key <logkey>',
      'the log private key (PKCS#8 PEM, mode 0600); publish reads it from here',
    )
    .option(
      '--root <root.json>',
      'also serve this signed trust root (as publish-root does); add checks statements against it',
    )
    .addHelpText('after', examples(initExample))
    .action(act(async () => (await import('../actions/log')).logInit));

  log
    .command('add')
    .description(
      'append DSSE statement envelopes, each verified against the trust root first; ' +
        'all or nothing, duplicates rejected',
    )
    .argument('<dir>', 'the log directory')
    .argument('<envelope...>', 'envelope files (JSON, as written by vouch sign)')
    .option(
      '--root <root.json>',
      'the trust root that names this log and its signers (default: the newest the log serves)',
    )
    .option('--publish', 'then publish (as vouch log publish does)')
    .addHelpText(
      'after',
      examples(
        'vouch log add log --publish app.json',
        'vouch log add log --root root.json app.json revoke.json',
      ),
    )
    .action(act(async () => (await import('../actions/log')).logAdd));

  log
    .command('publish-root')
    .description(
      'serve a signed trust root beside the tiles (roots/<V>.json), so devices take root ' +
        'rotations from any mirror; each version must rotate from the one published before',
    )
    .argument('<dir>', 'the log directory')
    .argument('<root.json>', 'the signed trust root (vouch root sign)')
    .addHelpText('after', examples('vouch log publish-root log root-v2.json'))
    .action(act(async () => (await import('../actions/log')).logPublishRoot));

  log
    .command('publish')
    .description(
      'write the tiles and entry bundles that changed, then the checkpoint signed and timestamped ' +
        'by the log key (c2sp.org/tlog-tiles, tlog-cosignature); with nothing new, the same ' +
        'checkpoint signed at a new time (devices count freshness from it)',
    )
    .argument('<dir>', 'the log directory')
    .addHelpText('after', examples('vouch log publish log'))
    .action(act(async () => (await import('../actions/log')).logPublish));

  log
    .command('proof')
    .description(
      'print an inclusion proof (--index) or a consistency proof (--old) from the published ' +
        'tiles: the tree size, its root and the proof hashes (base64), as JSON',
    )
    .argument('<dir>', 'the log directory')
    .option('--index <i>', 'prove entry I is in the tree', treeIndex)
    .option('--old <m>', 'prove the tree of size M is a prefix of the tree', treeIndex)
    .option(
      '--size <n>',
      'the tree to prove against (default: the published checkpoint)',
      treeIndex,
    )
    .addHelpText(
      'after',
      examples('vouch log proof log --index 0', 'vouch log proof log --old 1 --size 2'),
    )
    .action(act(async () => (await import('../actions/log')).logProof));

  log
    .command('cosign')
    .description(
      'witness the published checkpoint: check it against the tiles and against what this ' +
        'witness cosigned before, then add a tlog-cosignature/v1; prints the witness verifier string',
    )
    .argument('<dir>', 'the log directory')
    .requiredOption('--key <witnesskey>', 'the witness private key (PKCS#8 PEM, mode 0600)')
    .option('--name <name>', 'the witness name (default: the key file name without extension)')
    .addHelpText(
      'after',
      examples(
        'vouch log cosign log --key witness.key',
        'vouch log cosign log --key w1.key --name witness.example.org',
      ),
    )
    .action(act(async () => (await import('../actions/log')).logCosign));

  log
    .command('serve')
    .description(
      'serve the published log (checkpoint, tiles, entry bundles) over HTTP until SIGINT or SIGTERM',
    )
    .argument('<dir>', 'the log directory')
    .addOption(
      new Option('--listen <host:port>', 'address to listen on')
        .argParser(listenAddress)
        .default(listenAddress('127.0.0.1:8080'), '127.0.0.1:8080'),
    )
    .addHelpText(
      'after',
      examples('vouch log serve log', 'vouch log serve log --listen 0.0.0.0:8080'),
    )
    .action(act(async () => (await import('../actions/log')).logServe));

  return log;
}
