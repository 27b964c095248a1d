import { type AuthorizedStatement, authorizeEnvelope } from '../core/authorize';
import { parseEnvelope, signingKeys } from '../core/dsse';
import { type ErrorCode, VouchError } from '../core/errors';
import { parseJson } from '../core/json';
import { keyLabel, type PublicKey } from '../core/keys';
import { findKey, keyHolder, type Root, requireUnexpired, rootSignerId } from '../core/root';
import { type AppendResult, appendEntries } from './entries';
import { readConfig } from './logdir';
import { requireRootForLog } from './roots';

export interface AddResult extends AppendResult {
  readonly statements: readonly AuthorizedStatement[];
}

/**
 * Appends signed statements: the trust root must name this log (origin and key), and
 * every envelope must be signed by a key the root authorizes for its subjects at `now`
 * (see authorizeEnvelope). The entries are the envelope bytes exactly as given. One bad
 * envelope and nothing is appended; the error names every envelope refused, each by
 * its name in `names` (default `envelope <n>`).
 */
export async function addEnvelopes(
  dir: string,
  root: Root,
  envelopes: readonly Uint8Array[],
  now: Date,
  names: readonly string[] = envelopes.map((_, i) => `envelope ${i + 1}`),
): Promise<AddResult> {
  const config = await readConfig(dir);
  requireRootForLog(config, root);
  // Once, before the envelopes: an expired root refuses them all for the same reason.
  requireUnexpired(root, now);
  const refused: VouchError[] = [];
  const statements = envelopes.flatMap((envelope, i) => {
    try {
      return [authorizeEnvelope(root, envelope, now)];
    } catch (error) {
      if (!(error instanceof VouchError)) throw error;
      const why = whoSigned.has(error.code) ? explainSigning(root, envelope) : undefined;
      refused.push(
        new VouchError(error.code, `${names[i]}: ${why ?? error.message}`, { cause: error }),
      );
      return [];
    }
  });
  const [first] = refused;
  if (first && refused.length === 1) throw first;
  if (first) {
    // One line, as every error message is (the CLI escapes line breaks in messages, since
    // they quote input): the refusals one after another.
    const each = refused.map((error) => error.message).join('; ');
    throw new VouchError(
      first.code,
      `${refused.length} of ${envelopes.length} envelopes refused, nothing appended: ${each}`,
      { cause: first },
    );
  }
  return { ...(await appendEntries(dir, envelopes)), statements };
}

/** Refusals whose cause is who signed the envelope, or who it says signed it. */
const whoSigned = new Set<ErrorCode>(['SIGNATURE_INVALID', 'SIGNER_UNKNOWN', 'SIGNER_MISMATCH']);

/**
 * The whole story of a statement refused for its signer or key, for the publisher to act
 * on: the signer it names (read from the payload, unverified), whether the root lists
 * that signer, which party of the root holds the key that signed (if any), and what to do.
 * Undefined when the envelope or its statement cannot even be read (the original error says why).
 */
function explainSigning(root: Root, bytes: Uint8Array): string | undefined {
  let claimed: unknown;
  let signed: PublicKey[];
  try {
    const envelope = parseEnvelope(bytes);
    const payload = parseJson(envelope.payload, 'STATEMENT_INVALID', 'statement');
    claimed = (payload as { predicate?: { signer?: unknown } } | null)?.predicate?.signer;
    const everyKey = [
      ...root.rootKeys,
      ...root.signers.flatMap((signer) => signer.keys),
      root.log.key,
      ...root.witnesses,
    ];
    signed = signingKeys(envelope, everyKey);
  } catch {
    return undefined;
  }
  if (typeof claimed !== 'string') return undefined;
  const keys =
    claimed === rootSignerId
      ? root.rootKeys
      : root.signers.find((signer) => signer.id === claimed)?.keys;
  const holders = signed.map((key) => keyHolder(root, key.raw) as string).join(' and ');
  const trustRoot = `trust root v${root.version}`;
  if (!keys) {
    const ids = root.signers.map((signer) => signer.id).join(', ') || 'no signers';
    const otherSigner = root.signers.find((signer) =>
      signed.some((key) => findKey(signer.keys, key.raw)),
    )?.id;
    return (
      `names signer ${claimed}, which ${trustRoot} does not list (it lists ${ids}); ` +
      `${holders ? `it is signed by ${holders}` : `no key of ${trustRoot} signed it`}: ` +
      `add the signer to the trust root (vouch root add-signer ROOT --id ${claimed} --key PUBLIC-KEY, then sign the root again)` +
      (otherSigner ? `, or sign as ${otherSigner} (--signer ${otherSigner})` : '')
    );
  }
  const whose = `${claimed === rootSignerId ? 'a root key' : `a key of ${claimed}`} (${keys.map(keyLabel).join(', ')})`;
  return holders
    ? `names signer ${claimed}, which ${trustRoot} lists, but is signed by ${holders}: sign it with ${whose}`
    : `names signer ${claimed}, which ${trustRoot} lists, but no key of ${trustRoot} signed it ` +
        `(a key the root does not list, or the envelope changed after signing): sign it with ${whose}, ` +
        `or list the key for ${claimed} in the trust root`;
}
