import {
  addSignature,
  type Envelope,
  maxEnvelopeBytes,
  serializeEnvelope,
  signingKeys,
} from '../../core/dsse';
import { encodeBase64, toHex } from '../../core/encoding';
import { VouchError } from '../../core/errors';
import { ExitCode } from '../../core/exit-codes';
import { KeyType, verifierString } from '../../core/keys';
import {
  findKey,
  keyHolder,
  parseRoot,
  parseRootEnvelope,
  type Root,
  type Signer,
  unsignedRoot,
  verifyRoot,
  verifyRootChain,
} from '../../core/root';
import { escapeLines, escapeText, safe } from '../../core/text';
import { formatUtcTime } from '../../core/time';
import { readExistingFile, writeFileDurably } from '../../files';
import type { Context, Report } from '../context';
import { readPrivateKeyFile, readPublicKey } from '../files';

export async function rootInit(
  _ctx: Context,
  options: {
    out: string;
    threshold: number;
    rootKey: string[];
    logOrigin: string;
    logKey: string;
    witness?: string[];
    witnessQuorum?: number;
    version: number;
    expires: number;
    signer?: string[];
    sign?: string[];
  },
) {
  const created: Root = {
    version: options.version,
    expires: expiresIn(options.expires),
    rootKeys: await rootKeys(options.rootKey),
    threshold: options.threshold,
    log: {
      origin: options.logOrigin,
      key: await readPublicKey(options.logKey, {
        name: options.logOrigin,
        type: KeyType.Ed25519,
      }),
    },
    ...(await witnessesOf(options, { witnesses: [], witnessQuorum: 0 })),
    signers: await Promise.all((options.signer ?? []).map(signerOf)),
  };
  let envelope = unsignedRoot(created);
  for (const path of options.sign ?? []) {
    const key = await readPrivateKeyFile(path);
    const rootKey = findKey(created.rootKeys, key.raw);
    if (!rootKey) throw new VouchError('USAGE', `--sign ${path}: not the key of any --root-key`);
    envelope = addSignature(envelope, key, toHex(rootKey.keyId));
  }
  await writeFileDurably(options.out, serializeEnvelope(envelope), { exclusive: true });
  const signed = envelope.signatures.length > 0 ? 'new trust root' : 'new unsigned trust root';
  return summary(created, envelope, `${options.out}: ${signed}`);
}

/** `--signer ID=KEY` of `root init`: a signer who may sign any name (add-signer for more). */
async function signerOf(arg: string): Promise<Signer> {
  const at = arg.indexOf('=');
  if (at <= 0 || at === arg.length - 1) {
    throw new VouchError('USAGE', `--signer ${arg}: expected ID=KEY, e.g. dev@example.org=dev.pub`);
  }
  const id = arg.slice(0, at);
  const key = await readPublicKey(arg.slice(at + 1), { name: id, type: KeyType.Ed25519 });
  return { id, keys: [key], scopes: ['**'] };
}

export async function rootAddSigner(
  _ctx: Context,
  path: string,
  options: {
    id: string;
    key: string[];
    scope?: string[];
    validFrom?: string;
    validUntil?: string;
  },
) {
  const { root: current, envelope } = await loadRoot(path);
  const signer: Signer = {
    id: options.id,
    keys: await Promise.all(
      options.key.map((arg) => readPublicKey(arg, { name: options.id, type: KeyType.Ed25519 })),
    ),
    scopes: options.scope ?? ['**'],
    ...(options.validFrom !== undefined ? { validFrom: options.validFrom } : {}),
    ...(options.validUntil !== undefined ? { validUntil: options.validUntil } : {}),
  };
  return rewrite(
    path,
    envelope,
    { ...current, signers: [...current.signers, signer] },
    `added signer ${signer.id} (scopes ${signer.scopes.join(', ')})`,
  );
}

export async function rootRemoveSigner(_ctx: Context, path: string, options: { id: string }) {
  const { root: current, envelope } = await loadRoot(path);
  if (!current.signers.some((signer) => signer.id === options.id)) {
    throw new VouchError('SIGNER_UNKNOWN', `${path} has no signer ${options.id}`);
  }
  const signers = current.signers.filter((signer) => signer.id !== options.id);
  return rewrite(path, envelope, { ...current, signers }, `removed signer ${options.id}`);
}

export async function rootBump(
  _ctx: Context,
  path: string,
  options: {
    out: string;
    expires: number;
    threshold?: number;
    rootKey?: string[];
    witness?: string[];
    witnessQuorum?: number;
  },
) {
  const { root: current } = await loadRoot(path);
  const next: Root = {
    ...current,
    version: current.version + 1,
    expires: expiresIn(options.expires),
    rootKeys: options.rootKey ? await rootKeys(options.rootKey) : current.rootKeys,
    threshold: options.threshold ?? current.threshold,
    ...(await witnessesOf(options, current)),
  };
  const envelope = unsignedRoot(next);
  await writeFileDurably(options.out, serializeEnvelope(envelope), { exclusive: true });
  return summary(next, envelope, `${options.out}: unsigned successor of ${path}`);
}

/**
 * Adds the signature of a root key. Only keys that count are taken: one of the root's own
 * keys or, with `trusted` (the version it rotates from), one of that root's keys (TUF
 * §5.3.4: N+1 needs a threshold of N's keys too). Any other signature would only sit
 * there and make the next `root verify` or `log publish-root` fail far from its cause.
 */
export async function rootSign(
  _ctx: Context,
  path: string,
  options: { key: string; trusted?: string },
) {
  const key = await readPrivateKeyFile(options.key);
  const { root: current, envelope } = await loadRoot(path);
  const previous =
    options.trusted === undefined ? undefined : await previousRoot(options.trusted, current);
  const own = findKey(current.rootKeys, key.raw);
  const old = previous && findKey(previous.rootKeys, key.raw);
  const rootKey = own ?? old;
  if (!rootKey) throw notARootKey(options.key, key.raw, path, current, previous);
  // keyid is an unsigned hint: the key ID of the matching root key's verifier string.
  const signed = addSignature(envelope, key, toHex(rootKey.keyId));
  if (signed === envelope) return summary(current, envelope, `${path}: already signed by this key`);
  await writeFileDurably(path, serializeEnvelope(signed));
  const note = own
    ? `signed by root key ${own.name}`
    : `signed by root key ${rootKey.name} of the previous version v${previous?.version}`;
  return summary(current, signed, `${path}: ${note}`);
}

/** The root a rotation starts from: valid on its own, and exactly one version below. */
async function previousRoot(file: string, next: Root): Promise<Root> {
  const trusted = verifyRoot(
    parseRootEnvelope(await readExistingFile(file, maxEnvelopeBytes, 'trust root')),
  );
  if (trusted.version !== next.version - 1) {
    throw new VouchError(
      trusted.version < next.version ? 'ROOT_VERSION_SKIP' : 'ROOT_ROLLBACK',
      `--trusted ${file} is root v${trusted.version}; a rotation to v${next.version} starts from v${next.version - 1}`,
    );
  }
  return trusted;
}

/** Names the key, what it is to the root if anything, and the keys that would count. */
function notARootKey(
  keyPath: string,
  raw: Uint8Array,
  path: string,
  current: Root,
  previous: Root | undefined,
): VouchError {
  const holder = keyHolder(current, raw) ?? (previous && keyHolder(previous, raw));
  const lists = (root: Root) =>
    `v${root.version} lists root keys ${root.rootKeys.map(verifierString).join(', ')} (threshold ${root.threshold})`;
  const expected = [current, previous].flatMap((root) => (root ? [lists(root)] : []));
  if (!previous && current.version > 1) {
    expected.push(
      `a key of v${current.version - 1} may sign this rotation when --trusted gives that root`,
    );
  }
  const verifierKey = encodeBase64(Buffer.concat([Buffer.from([KeyType.Ed25519]), raw]));
  return new VouchError(
    'ROOT_KEY_UNKNOWN',
    `${keyPath} (public key ${verifierKey}) is not a root key of ${path}${holder ? `: it is ${holder}` : ''}; ${expected.join('; ')}; nothing was signed`,
  );
}

export async function rootVerify(_ctx: Context, path: string, options: { trusted?: string }) {
  const chain = options.trusted === undefined ? [path] : [options.trusted, path];
  const envelopes = await Promise.all(
    chain.map(async (file) =>
      parseRootEnvelope(await readExistingFile(file, maxEnvelopeBytes, 'trust root')),
    ),
  );
  const verified = verifyRootChain(envelopes, new Date());
  const what = options.trusted === undefined ? 'valid' : `valid rotation from ${options.trusted}`;
  return summary(verified, envelopes.at(-1) as Envelope, `${path}: ${what}`);
}

export async function rootShow(_ctx: Context, path: string) {
  const { root: current, envelope } = await loadRoot(path);
  const report = summary(current, envelope, path);
  const document = JSON.parse(Buffer.from(envelope.payload).toString('utf8'));
  return {
    ...report,
    data: { ...(report.data as object), root: document },
    text: `${escapeLines(JSON.stringify(document, null, 2))}\n${report.text}`,
  };
}

/** A root file, parsed but not verified: for the publisher's own edits. */
async function loadRoot(path: string): Promise<{ root: Root; envelope: Envelope }> {
  const envelope = parseRootEnvelope(await readExistingFile(path, maxEnvelopeBytes, 'trust root'));
  return { root: parseRoot(envelope.payload), envelope };
}

async function rootKeys(args: readonly string[]) {
  return Promise.all(args.map((arg) => readPublicKey(arg, { type: KeyType.Ed25519 })));
}

/**
 * The witnesses of a new root (`init`) or of the next version (`bump`): the given ones
 * replace `current`'s and need their quorum; a quorum alone changes `current`'s quorum,
 * which needs witnesses to count.
 */
async function witnessesOf(
  options: { readonly witness?: readonly string[]; readonly witnessQuorum?: number },
  current: Pick<Root, 'witnesses' | 'witnessQuorum'>,
): Promise<Pick<Root, 'witnesses' | 'witnessQuorum'>> {
  if (options.witness === undefined) {
    if (options.witnessQuorum !== undefined && current.witnesses.length === 0) {
      throw new VouchError('USAGE', '--witness-quorum needs --witness');
    }
    return {
      witnesses: current.witnesses,
      witnessQuorum: options.witnessQuorum ?? current.witnessQuorum,
    };
  }
  if (options.witnessQuorum === undefined) {
    throw new VouchError('USAGE', '--witness needs --witness-quorum');
  }
  return {
    witnesses: await Promise.all(
      options.witness.map((arg) => readPublicKey(arg, { type: KeyType.Cosignature })),
    ),
    witnessQuorum: options.witnessQuorum,
  };
}

/** Writes a changed root in place; the old signatures covered the old content, so they go. */
async function rewrite(path: string, old: Envelope, changed: Root, what: string): Promise<Report> {
  const envelope = unsignedRoot(changed);
  await writeFileDurably(path, serializeEnvelope(envelope));
  const dropped =
    old.signatures.length > 0 ? `; removed ${old.signatures.length} signature(s): sign again` : '';
  return summary(changed, envelope, `${path}: ${what}${dropped}`);
}

function expiresIn(days: number): string {
  return formatUtcTime(Date.now() + days * 24 * 60 * 60 * 1000);
}

function summary(root: Root, envelope: Envelope, headline: string): Report {
  const signedBy = signingKeys(envelope, root.rootKeys);
  const signers = root.signers.map((signer) => signer.id);
  return {
    exitCode: ExitCode.OK,
    data: {
      version: root.version,
      expires: root.expires,
      threshold: root.threshold,
      rootKeys: root.rootKeys.map(verifierString),
      signedBy: signedBy.map(verifierString),
      signatures: envelope.signatures.length,
      log: { origin: root.log.origin, key: verifierString(root.log.key) },
      witnesses: root.witnesses.map(verifierString),
      witnessQuorum: root.witnessQuorum,
      signers,
    },
    text: [
      escapeText(headline),
      safe`  version ${root.version}, expires ${root.expires}`,
      `  signed by ${signedBy.length} of ${root.rootKeys.length} root keys (threshold ${root.threshold})${
        envelope.signatures.length > signedBy.length
          ? `, plus ${envelope.signatures.length - signedBy.length} other signature(s)`
          : ''
      }`,
      safe`  log ${root.log.origin}; ${root.witnesses.length} witness(es), quorum ${root.witnessQuorum}`,
      safe`  signers: ${signers.length > 0 ? signers.join(', ') : 'none'}`,
    ].join('\n'),
  };
}
