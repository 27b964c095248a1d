/**
 * Bytes that need not be UTF-8 (Linux file names, command-line arguments) carried in a JS
 * string without loss, as Python's `surrogateescape` error handler does (PEP 383): valid
 * UTF-8 decodes as usual, and each byte of an invalid sequence becomes the lone surrogate
 * U+DC00 + byte (U+DC80–U+DCFF), which no valid UTF-8 decodes to. Encoding turns those
 * back into their bytes, so decode then encode gives the original bytes, always.
 */

/** Length of the well-formed UTF-8 sequence at `at` (Unicode 15 Table 3-7), or 0. */
function sequenceLength(bytes: Uint8Array, at: number): number {
  const first = bytes[at] as number;
  const next = (i: number, low = 0x80, high = 0xbf) => {
    const byte = bytes[at + i];
    return byte !== undefined && byte >= low && byte <= high;
  };
  if (first < 0x80) return 1;
  if (first >= 0xc2 && first <= 0xdf) return next(1) ? 2 : 0;
  if (first >= 0xe0 && first <= 0xef) {
    const [low, high] = first === 0xe0 ? [0xa0, 0xbf] : first === 0xed ? [0x80, 0x9f] : [];
    return next(1, low, high) && next(2) ? 3 : 0;
  }
  if (first >= 0xf0 && first <= 0xf4) {
    const [low, high] = first === 0xf0 ? [0x90, 0xbf] : first === 0xf4 ? [0x80, 0x8f] : [];
    return next(1, low, high) && next(2) && next(3) ? 4 : 0;
  }
  return 0;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

export function decodeSurrogateEscape(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    // Not UTF-8 throughout: the valid runs decode as usual, the other bytes one by one.
  }
  let text = '';
  let run = 0;
  for (let at = 0; at < bytes.length; ) {
    const length = sequenceLength(bytes, at);
    if (length > 0) {
      at += length;
      continue;
    }
    text +=
      utf8.decode(bytes.subarray(run, at)) + String.fromCharCode(0xdc00 + (bytes[at] as number));
    run = ++at;
  }
  return text + utf8.decode(bytes.subarray(run));
}

/** A byte carried as U+DC80–U+DCFF: a low surrogate that is not the second half of a pair. */
const escapedByte = /(?<![\ud800-\udbff])[\udc80-\udcff]/;

/** Whether `text` carries bytes that are not UTF-8 (then only encodeSurrogateEscape gives them). */
export function hasEscapedBytes(text: string): boolean {
  return escapedByte.test(text);
}

export function encodeSurrogateEscape(text: string): Buffer {
  const parts = text.split(new RegExp(`(${escapedByte.source})`));
  // Odd indexes hold the escaped bytes (split keeps the captured separators).
  return Buffer.concat(
    parts.map((part, i) =>
      i % 2 === 1 ? Buffer.of(part.charCodeAt(0) - 0xdc00) : Buffer.from(part, 'utf8'),
    ),
  );
}
