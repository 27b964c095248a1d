import { basename, extname } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { maxEnvelopeBytes } from '../../core/dsse';
import { encodeBase64 } from '../../core/encoding';
import { VouchError } from '../../core/errors';
import { verifierString } from '../../core/keys';
import { parseRootEnvelope, verifyRoot } from '../../core/root';
import { maxEntrySize } from '../../core/tiles';
import { readExistingFile } from '../../files';
import {
  addEnvelopes,
  cosignLog,
  initLog,
  type LogProof,
  proveConsistency,
  proveInclusion,
  publicDir,
  publishLog,
  publishRoot,
  readConfig,
  serveLog,
} from '../../ledger';
import type { Report } from '../context';
import { ExitCode } from '../exit';
import { readPrivateKeyFile } from '../files';
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

/** Resolves with the name of the first SIGINT or SIGTERM, then stops listening for them. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];
    const stop = (signal: NodeJS.Signals) => {
      for (const name of signals) process.off(name, stop);
      resolve(signal);
    };
    for (const name of signals) process.once(name, stop);
  });
}

function proofReport(head: Record<string, number>, proof: LogProof): Report {
  const data = {
    ...head,
    size: proof.size,
    root: encodeBase64(proof.root),
    proof: proof.proof.map(encodeBase64),
  };
  return { exitCode: ExitCode.OK, data, text: JSON.stringify(data) };
}

export function logCommand(act: Act): Command {
  const log = new Command('log').description(
    'run a transparency log: append signed statements, publish C2SP tlog-tiles and signed ' +
      'checkpoints, prove inclusion and consistency, cosign as a witness, serve over HTTP',
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
    .action(
      act(async (_ctx, dir: string, options: { origin: string; key: string }) => {
        const key = await readPrivateKeyFile(options.key);
        const config = await initLog(dir, options.origin, options.key, key);
        const verifier = verifierString(config.key);
        return {
          exitCode: ExitCode.OK,
          data: { dir, origin: config.origin, verifier, key: config.keyPath },
          text: verifier,
        };
      }),
    );

  log
    .command('add')
    .description(
      'append DSSE statement envelopes, each verified against the trust root first; ' +
        'all or nothing, duplicates rejected',
    )
    .argument('<dir>', 'the log directory')
    .requiredOption('--root <root.json>', 'the trust root that names this log and its signers')
    .argument('<envelope...>', 'envelope files (JSON, as written by vouch sign)')
    .action(
      act(async (_ctx, dir: string, files: string[], options: { root: string }) => {
        const envelope = parseRootEnvelope(
          await readExistingFile(options.root, maxEnvelopeBytes, 'trust root'),
        );
        const root = verifyRoot(envelope);
        // A log entry is at most 65535 bytes (tlog-tiles entry bundles).
        const envelopes = await Promise.all(
          files.map((file) => readExistingFile(file, maxEntrySize, 'envelope')),
        );
        const added = await addEnvelopes(dir, root, envelopes, new Date());
        const entries = files.map((file, i) => ({
          index: added.first + i,
          file,
          signer: added.statements[i]?.signer,
          leafHash: encodeBase64(added.leafHashes[i] as Uint8Array),
        }));
        return {
          exitCode: ExitCode.OK,
          data: { added: entries.length, size: added.size, entries },
          text: `added ${entries.length} entries at ${added.first}..${added.size - 1}; ${added.size} committed (run vouch log publish)`,
        };
      }),
    );

  log
    .command('publish-root')
    .description(
      'serve a signed trust root beside the tiles (roots/<V>.json), so devices take root ' +
        'rotations from any mirror; each version must rotate from the one published before',
    )
    .argument('<dir>', 'the log directory')
    .argument('<root.json>', 'the signed trust root (vouch root sign)')
    .action(
      act(async (_ctx, dir: string, file: string) => {
        const published = await publishRoot(
          dir,
          await readExistingFile(file, maxEnvelopeBytes, 'trust root'),
        );
        return {
          exitCode: ExitCode.OK,
          data: published,
          text: published.written
            ? `published trust root version ${published.version} as roots/${published.version}.json`
            : `trust root version ${published.version} was already published`,
        };
      }),
    );

  log
    .command('publish')
    .description(
      'write the tiles and entry bundles that changed, then the signed checkpoint (c2sp.org/tlog-tiles)',
    )
    .argument('<dir>', 'the log directory')
    .action(
      act(async (_ctx, dir: string) => {
        const config = await readConfig(dir);
        const key = await readPrivateKeyFile(config.keyPath);
        const result = await publishLog(dir, key);
        return {
          exitCode: ExitCode.OK,
          data: {
            origin: result.origin,
            previousSize: result.previousSize,
            size: result.size,
            root: encodeBase64(result.root),
            tiles: result.tiles,
            bundles: result.bundles,
          },
          text:
            result.size === result.previousSize
              ? `nothing new: size ${result.size}`
              : `published ${result.size - result.previousSize} entries (${result.tiles} tiles, ${result.bundles} entry bundles):\n${result.checkpoint}`,
        };
      }),
    );

  log
    .command('proof')
    .description(
      'print an inclusion proof (--index) or a consistency proof (--old) from the published ' +
        'tiles, as JSON: {"index"|"old","size","root","proof":[base64…]}',
    )
    .argument('<dir>', 'the log directory')
    .option('--index <i>', 'prove entry I is in the tree', treeIndex)
    .option('--old <m>', 'prove the tree of size M is a prefix of the tree', treeIndex)
    .option(
      '--size <n>',
      'the tree to prove against (default: the published checkpoint)',
      treeIndex,
    )
    .action(
      act(async (_ctx, dir: string, options: { index?: number; old?: number; size?: number }) => {
        if ((options.index === undefined) === (options.old === undefined)) {
          throw new VouchError('USAGE', 'give exactly one of --index and --old');
        }
        if (options.index !== undefined) {
          return proofReport(
            { index: options.index },
            await proveInclusion(dir, options.index, options.size),
          );
        }
        const old = options.old as number;
        return proofReport({ old }, await proveConsistency(dir, old, options.size));
      }),
    );

  log
    .command('cosign')
    .description(
      'witness the published checkpoint: check it against the tiles and against what this ' +
        'witness cosigned before, then add a tlog-cosignature/v1; prints the witness verifier string',
    )
    .argument('<dir>', 'the log directory')
    .requiredOption('--key <witnesskey>', 'the witness private key (PKCS#8 PEM, mode 0600)')
    .option('--name <name>', 'the witness name (default: the key file name without extension)')
    .action(
      act(async (_ctx, dir: string, options: { key: string; name?: string }) => {
        const key = await readPrivateKeyFile(options.key);
        const name = options.name ?? basename(options.key, extname(options.key));
        const result = await cosignLog(dir, key, name, new Date());
        return {
          exitCode: ExitCode.OK,
          data: {
            witness: result.name,
            verifier: result.verifier,
            size: result.size,
            timestamp: result.timestamp,
          },
          text: result.verifier,
        };
      }),
    );

  log
    .command('serve')
    .description(
      'serve the published log (checkpoint, tiles, entry bundles) over HTTP until SIGINT or SIGTERM',
    )
    .argument('<dir>', 'the log directory')
    .option(
      '--listen <host:port>',
      'address to listen on',
      listenAddress,
      listenAddress('127.0.0.1:8080'),
    )
    .action(
      act(async (ctx, dir: string, options: { listen: { host: string; port: number } }) => {
        const server = await serveLog(dir, options.listen);
        ctx.io.stdout(
          ctx.output === 'json'
            ? `${JSON.stringify({ url: server.url })}\n`
            : `serving ${publicDir(dir)} at ${server.url}\n`,
        );
        const signal = await untilSignal();
        await server.close();
        return { exitCode: ExitCode.OK, data: { url: server.url, stopped: signal }, text: '' };
      }),
    );

  return log;
}
