import { basename, extname } from 'node:path';
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
import type { Context, Report } from '../context';
import { ExitCode } from '../exit';
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
  options: { origin: string; key: string },
) {
  const key = await readPrivateKeyFile(options.key);
  const config = await initLog(dir, options.origin, options.key, key);
  const verifier = verifierString(config.key);
  return {
    exitCode: ExitCode.OK,
    data: { dir, origin: config.origin, verifier, key: config.keyPath },
    text: verifier,
  };
}

export async function logAdd(
  _ctx: Context,
  dir: string,
  files: string[],
  options: { root: string },
) {
  const envelope = parseRootEnvelope(
    await readExistingFile(options.root, maxEnvelopeBytes, 'trust root'),
  );
  const root = verifyRoot(envelope);
  // A log entry is at most 65535 bytes (tlog-tiles entry bundles).
  const envelopes = await Promise.all(
    files.map((file) => readExistingFile(file, maxEntrySize, 'envelope')),
  );
  const added = await addEnvelopes(dir, root, envelopes, new Date(), files);
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
    text: result.verifier,
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
      : `serving ${publicDir(dir)} at ${server.url}\n`,
  );
  const signal = await untilSignal();
  await server.close();
  return { exitCode: ExitCode.OK, data: { url: server.url, stopped: signal }, text: '' };
}
