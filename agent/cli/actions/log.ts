import { basename, extname } from 'node:path';
import { maxEnvelopeBytes } from '../../core/dsse';
import { encodeBase64 } from '../../core/encoding';
import { VouchError } from '../../core/errors';
import { ExitCode } from '../../core/exit-codes';
import { namePublicKey, verifierString } from '../../core/keys';
import { parseRootEnvelope, verifyRoot } from '../../core/root';
import { escapeLines, escapeText, safe } from '../../core/text';
import { maxEntrySize } from '../../core/tiles';
import { formatUtcTime } from '../../core/time';
import { readExistingFile } from '../../files';
import {
  addEnvelopes,
  cosignLog,
  initLog,
  type LogProof,
  newestPublishedRoot,
  proveConsistency,
  proveInclusion,
  publicDir,
  publishLog,
  publishRoot,
  readConfig,
  requireRootForLog,
  serveLog,
} from '../../ledger';
import type { Context, Report } from '../context';
import { readPrivateKeyFile } from '../files';

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

export async function logInit(
  _ctx: Context,
  dir: string,
  options: { origin: string; key: string; root?: string },
) {
  const key = await readPrivateKeyFile(options.key);
  const rootBytes =
    options.root && (await readExistingFile(options.root, maxEnvelopeBytes, 'trust root'));
  if (rootBytes) {
    // Checked before the log exists, so that a root for another log leaves nothing behind.
    const logKey = namePublicKey(options.origin, key.raw);
    requireRootForLog(
      { origin: options.origin, key: logKey, keyPath: options.key },
      verifyRoot(parseRootEnvelope(rootBytes)),
    );
  }
  const config = await initLog(dir, options.origin, options.key, key);
  const published = rootBytes ? await publishRoot(dir, rootBytes) : undefined;
  const verifier = verifierString(config.key);
  return {
    exitCode: ExitCode.OK,
    data: {
      dir,
      origin: config.origin,
      verifier,
      key: config.keyPath,
      root: published?.version ?? null,
    },
    text: escapeText(verifier),
  };
}

export async function logAdd(
  _ctx: Context,
  dir: string,
  files: string[],
  options: { root?: string; publish?: boolean },
) {
  const envelopes = await Promise.all(
    // A log entry is at most 65535 bytes (tlog-tiles entry bundles).
    files.map((file) => readExistingFile(file, maxEntrySize, 'envelope')),
  );
  const logged = await appendToLog(dir, envelopes, { ...options, names: files });
  const entries = files.map((file, i) => ({ ...logged.entries[i], file }));
  return {
    exitCode: ExitCode.OK,
    data: { added: entries.length, size: logged.size, entries, published: logged.published },
    text: `added ${entries.length} entries at ${logged.first}..${logged.size - 1}; ${logged.size} committed${
      logged.published ? ', published' : ' (run vouch log publish)'
    }`,
  };
}

/**
 * Appends envelopes to the log in `dir`, checked against `root` (a file) or else the newest
 * root the log serves (`log init --root`, `log publish-root`); with `publish`, then
 * publishes. For `log add` and `sign --log`.
 */
export async function appendToLog(
  dir: string,
  envelopes: readonly Uint8Array[],
  options: { root?: string; publish?: boolean; names?: readonly string[] },
) {
  const root =
    options.root === undefined
      ? await newestPublishedRoot(dir)
      : verifyRoot(
          parseRootEnvelope(await readExistingFile(options.root, maxEnvelopeBytes, 'trust root')),
        );
  if (!root) {
    throw new VouchError(
      'USAGE',
      `${dir} serves no trust root to check statements against: give --root ROOT, or publish one (vouch log publish-root ${dir} ROOT)`,
    );
  }
  const added = await addEnvelopes(dir, root, envelopes, new Date(), options.names);
  if (options.publish) await publish(dir);
  return {
    first: added.first,
    size: added.size,
    published: options.publish === true,
    entries: added.statements.map((statement, i) => ({
      index: added.first + i,
      signer: statement.signer,
      leafHash: encodeBase64(added.leafHashes[i] as Uint8Array),
    })),
  };
}

async function publish(dir: string) {
  const config = await readConfig(dir);
  return publishLog(dir, await readPrivateKeyFile(config.keyPath));
}

export async function logPublishRoot(_ctx: Context, dir: string, file: string) {
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
}

export async function logPublish(_ctx: Context, dir: string) {
  const result = await publish(dir);
  return {
    exitCode: ExitCode.OK,
    data: {
      origin: result.origin,
      previousSize: result.previousSize,
      size: result.size,
      root: encodeBase64(result.root),
      tiles: result.tiles,
      bundles: result.bundles,
      timestamp: result.timestamp,
    },
    text:
      result.size === result.previousSize
        ? `nothing new: size ${result.size}, checkpoint signed again at ${formatUtcTime(result.timestamp * 1000)}`
        : `published ${result.size - result.previousSize} entries (${result.tiles} tiles, ${result.bundles} entry bundles):\n${escapeLines(result.checkpoint)}`,
  };
}

export async function logProof(
  _ctx: Context,
  dir: string,
  options: { index?: number; old?: number; size?: number },
) {
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
}

export async function logCosign(
  _ctx: Context,
  dir: string,
  options: { key: string; name?: string },
) {
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
    text: escapeText(result.verifier),
  };
}

export async function logServe(
  ctx: Context,
  dir: string,
  options: { listen: { host: string; port: number } },
) {
  const server = await serveLog(dir, options.listen);
  ctx.io.stdout(
    ctx.output === 'json'
      ? `${JSON.stringify({ url: server.url })}\n`
      : safe`serving ${publicDir(dir)} at ${server.url}\n`,
  );
  const signal = await untilSignal();
  await server.close();
  return { exitCode: ExitCode.OK, data: { url: server.url, stopped: signal }, text: '' };
}
