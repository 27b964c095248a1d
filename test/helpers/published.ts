import { createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'vitest';
import { runCli } from './cli';

/**
 * The whole flow through the CLI, as a publisher and a device would run it: keygen → root
 * (two signers) → sign files → log add/publish → sync. Files `trusted`, `untrusted`,
 * `unsupported`, `revoked` (notarized, then revoked with reason "key leaked"), `unknown`
 * (never signed) and `contested` (trusted by the notary, later untrusted by the other
 * signer), each holding `content of <name>`.
 */
export interface PublishedWorld {
  readonly dir: string;
  readonly stateDir: string;
}

export const notary = 'notary@example.org';
export const other = 'other@example.org';

/** SHA-256 of `content of <name>`: what file `name` holds. */
export function contentDigest(name: string): string {
  return createHash('sha256').update(`content of ${name}`).digest('hex');
}

/** What `publishAndSync`'s caller may add: its own files signed, after the standard ones. */
export interface MoreStatements {
  /** A path in the world's directory (keys are `keys/<signer>.key`). */
  readonly file: (name: string) => string;
  /** `vouch COMMAND --key … --signer SIGNER --file NAME EXTRA…`; the envelope's path. */
  readonly sign: (
    command: string,
    signer: string,
    name: string,
    ...extra: string[]
  ) => Promise<string>;
}

export async function publishAndSync(
  more?: (world: MoreStatements) => Promise<string[]>,
): Promise<PublishedWorld> {
  const dir = await mkdtemp(join(tmpdir(), 'vouch-e2e-'));
  const file = (name: string) => join(dir, name);
  const cli = async (...argv: string[]) => {
    const result = await runCli([...argv, '--log-level', 'silent']);
    expect(result.exitCode, `${argv.join(' ')}: ${result.stderr}${result.stdout}`).toBe(0);
  };
  const sign = async (command: string, signer: string, name: string, ...extra: string[]) => {
    const out = file(`${name}-${command}-${signer}.json`);
    const key = file(`keys/${signer}.key`);
    await cli(
      command,
      '--key',
      key,
      '--signer',
      signer,
      '--file',
      file(name),
      ...extra,
      '--out',
      out,
    );
    return out;
  };
  for (const id of ['root-1', 'log', notary, other]) {
    await cli('keygen', '--signer', id, '--out', file('keys'));
  }
  const root = file('root.json');
  await cli(
    'root',
    'init',
    '--out',
    root,
    '--threshold',
    '1',
    '--root-key',
    file('keys/root-1.pub'),
    '--log-origin',
    'log.example.org/vouch',
    '--log-key',
    file('keys/log.pub'),
    '--expires',
    '30',
  );
  for (const id of [notary, other]) {
    await cli('root', 'add-signer', root, '--id', id, '--key', file(`keys/${id}.pub`));
  }
  await cli('root', 'sign', root, '--key', file('keys/root-1.key'));
  const log = file('log');
  await cli('log', 'init', log, '--origin', 'log.example.org/vouch', '--key', file('keys/log.key'));
  for (const name of ['trusted', 'untrusted', 'unsupported', 'revoked', 'unknown', 'contested']) {
    await writeFile(file(name), `content of ${name}`);
  }
  // Log order decides (docs/architecture.md "Status model"): the later statement wins.
  const statements = [
    await sign('notarize', notary, 'trusted'),
    await sign('untrust', notary, 'untrusted'),
    await sign('unsupport', notary, 'unsupported'),
    await sign('notarize', notary, 'revoked'),
    await sign('sign', notary, 'revoked', '--status', 'revoked', '--reason', 'key leaked'),
    await sign('notarize', notary, 'contested'),
    await sign('untrust', other, 'contested'),
    ...((await more?.({ file, sign })) ?? []),
  ];
  await cli('log', 'add', log, '--root', root, ...statements);
  await cli('log', 'publish', log);
  const stateDir = file('state');
  const mirror = pathToFileURL(join(log, 'public')).href;
  await cli('sync', '--state-dir', stateDir, '--root', root, '--mirror', mirror);
  return { dir, stateDir };
}
