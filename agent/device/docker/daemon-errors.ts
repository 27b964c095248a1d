/**
 * dockerd's error messages that decide something in vouch, in one table, and the two forms
 * dockerd sends an error in. Each row names what dockerd says, the pattern that finds it
 * in a message, what it means here, and the dockerd versions the tests saw it from: each of
 * those has fixtures of dockerd's answers in `test/fixtures/dockerd/<version>/`, written by
 * `scripts/capture-dockerd-errors.ts` from a real daemon. Any other message is only passed on
 * in an error's text; a missing image is known by the 404 of `docker inspect`, not by text.
 */

export interface DaemonErrorRow {
  /** The row's name, as the fixtures name it. */
  readonly name: string;
  /** Finds the message's text that is the finding; it has no capturing groups. */
  readonly pattern: RegExp;
  /**
   * `mismatch`: the image's content differs from what its layers recorded, so the export does
   * not match the image ID: a `--deep` finding (UNTRUSTED), not a failure to check.
   */
  readonly means: 'mismatch';
  /** dockerd versions (`docker version`'s Server Version) it was seen with. */
  readonly seenWith: readonly string[];
}

/**
 * dockerd rebuilds each layer's tar from its tar-split record and the files on disk while it
 * exports an image (`docker save`); these are the ways that rebuild fails on content.
 */
export const daemonErrors: readonly DaemonErrorRow[] = [
  {
    // A file whose content differs from the layer's record (tar-split, tar/asm).
    name: 'file-integrity-checksum',
    pattern: /file integrity checksum failed for "(?:[^"\\]|\\.){0,4096}"/,
    means: 'mismatch',
    seenWith: ['20.10.24+dfsg1'],
  },
  {
    // A file of the record missing from the layer's own directory in the vfs or overlay2
    // storage: it cannot be read to rebuild the tar. Only a layer's own directory, and the
    // error's end, so that a file's name cannot smuggle the words in. (dockerd 20.10 on
    // overlay2 reads a layer through its `merged` mount, which this does not take: there a
    // deleted file is "could not check", as the fixtures of overlay2 show.)
    name: 'layer-file-missing',
    pattern:
      /open \/[^\n]{0,4096}?\/(?:vfs\/dir\/[0-9a-f]{64}|overlay2\/[0-9a-f]{64}\/diff)\/[^\n]{0,4096}?: no such file or directory(?=["\s]|$)/,
    means: 'mismatch',
    seenWith: ['20.10.24+dfsg1'],
  },
  {
    // A rebuilt tar that does not hash to its diff_id (layer store, verifiedReadCloser).
    name: 'layer-data-unverified',
    pattern: /could not verify layer data for: sha256:[0-9a-f]{64}/,
    means: 'mismatch',
    seenWith: ['20.10.24+dfsg1'],
  },
];

/** Every row's pattern as one alternation, each in a group of its own (row i is group i + 1). */
const anyRow = new RegExp(daemonErrors.map((row) => `(${row.pattern.source})`).join('|'));

export interface DaemonFinding {
  readonly row: DaemonErrorRow;
  /** The text of the message the row's pattern found. */
  readonly text: string;
}

/** The first finding in one of dockerd's messages (the leftmost of any row's), if any. */
export function findDaemonError(message: string): DaemonFinding | undefined {
  const found = anyRow.exec(message);
  if (!found) return undefined;
  const group = found.findIndex((text, i) => i > 0 && text !== undefined);
  return { row: daemonErrors[group - 1] as DaemonErrorRow, text: found[0] };
}

/**
 * The message of an API error answer (a status other than 2xx): the Engine's JSON
 * `{"message": …}` (api/server/httputils), or the text as it is when it is not that JSON.
 */
export function apiErrorMessage(body: string): string {
  let message = body.trim();
  try {
    message = (JSON.parse(body) as { message?: string }).message ?? message;
  } catch {
    // Not the Engine's JSON: its text as it is.
  }
  return message.slice(0, 4096);
}

/**
 * The error dockerd wrote into a stream it had begun to send, if any: its JSON message
 * (`{"errorDetail":{"message":…},"error":…}`, pkg/streamformatter) in `tail`, the stream's end.
 */
export function streamErrorMessage(tail: string): string | undefined {
  const literal = /\{"errorDetail":\{"message":("(?:[^"\\]|\\.){0,4096}")/.exec(tail)?.[1];
  if (literal === undefined) return undefined;
  try {
    return JSON.parse(literal) as string;
  } catch {
    return undefined;
  }
}
