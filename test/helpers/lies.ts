/**
 * What a lying mirror does to a file it serves, for the sync tests
 * (test/device/sync/sync.test.ts) and the chaos suite (test/chaos/mirrors.test.ts).
 */

/** A checkpoint whose signature by `origin`'s key no longer verifies: one base64 digit changed. */
export function badSignature(checkpoint: Buffer, origin: string): Buffer {
  const text = checkpoint.toString('utf8');
  // Past "— <origin> " and the key ID's first digits: inside the signature.
  const at = text.lastIndexOf(`\u2014 ${origin} `) + origin.length + 10;
  return Buffer.from(text.slice(0, at) + (text[at] === 'A' ? 'B' : 'A') + text.slice(at + 1));
}

/** A tile 7 bytes short. */
export function truncatedTile(tile: Buffer): Buffer {
  return tile.subarray(0, tile.length - 7);
}

/** A tile (or bundle) with one bit of the byte `fromEnd` bytes before its end flipped. */
export function alteredTile(tile: Buffer, fromEnd = 1): Buffer {
  const altered = Buffer.from(tile);
  const at = altered.length - fromEnd;
  altered[at] = (altered[at] as number) ^ 1;
  return altered;
}
