import {
  addSignature,
  type Envelope,
  maxEnvelopeBytes,
  serializeEnvelope,
  signingKeys,
} from '../../core/dsse';
import { toHex } from '../../core/encoding';
import { VouchError } from '../../core/errors';
import { KeyType, type PrivateKey, type PublicKey, verifierString } from '../../core/keys';
import {
  parseRoot,
  parseRootEnvelope,
  type Root,
  type Signer,
  unsignedRoot,
  verifyRootChain,
} from '../../core/root';
import { escapeLines, escapeText, safe } from '../../core/text';
import { formatUtcTime } from '../../core/time';
import { readExistingFile, writeFileDurably } from '../../files';
import type { Context, Report } from '../context';
import { ExitCode } from '../exit';
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
    const rootKey = rootKeyOf(created, key);
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

export async function rootSign(_ctx: Context, path: string, options: { key: string }) {
  const key = await readPrivateKeyFile(options.key);
  const { root: current, envelope } = await loadRoot(path);
  const rootKey = rootKeyOf(current, key);
  // keyid is an unsigned hint: the key ID of the matching root key's verifier string.
  const signed = addSignature(envelope, key, rootKey ? toHex(rootKey.keyId) : '');
  if (signed === envelope) return summary(current, envelope, `${path}: already signed by this key`);
  await writeFileDurably(path, serializeEnvelope(signed));
  const note = rootKey
    ? `signed by root key ${rootKey.name}`
    : 'signed by a key that is not one of its root keys (right when it is a key of the previous version)';
  return summary(current, signed, `${path}: ${note}`);
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

/** The root key that `key` is the private half of, if any. */
function rootKeyOf(root: Root, key: PrivateKey): PublicKey | undefined {
  return root.rootKeys.find((candidate) => toHex(candidate.raw) === toHex(key.raw));
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
