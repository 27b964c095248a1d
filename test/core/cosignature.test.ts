import { describe, expect, it } from 'vitest';
import { formatCheckpoint, openCheckpoint, signCheckpoint } from '../../agent/core/checkpoint';
import {
  cosignatureSigner,
  cosignatureVerifier,
  cosignedMessage,
  cosignNote,
  logCosigner,
  maxTimestamp,
  verifyCosignatures,
} from '../../agent/core/cosignature';
import {
  generateKey,
  KeyType,
  namePublicKey,
  type PrivateKey,
  type PublicKey,
  signBytes,
  verifierString,
} from '../../agent/core/keys';
import { formatNote, type Note, parseNote, signNote } from '../../agent/core/note';
import { failure } from '../helpers/errors';

function witness(name: string): { key: PrivateKey; name: string; pub: PublicKey } {
  const { key } = generateKey();
  return { key, name, pub: namePublicKey(name, key.raw, KeyType.Cosignature) };
}

const logKey = generateKey().key;
const logPublic = namePublicKey('log.example/a', logKey.raw);
const checkpoint = signCheckpoint(
  { origin: 'log.example/a', size: 5, root: new Uint8Array(32).fill(7), extensions: [] },
  logKey,
  1_600_000_000,
);

describe('C2SP tlog-cosignature/v1', () => {
  it('signs the message of the specification', () => {
    const text =
      'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';
    expect(Buffer.from(cosignedMessage(Buffer.from(text), 1679315147)).toString()).toBe(
      `cosignature/v1\ntime 1679315147\n${text}`,
    );
  });

  it('has key IDs over type 0x04, distinct from the same key as a note key', () => {
    const w = witness('witness.example/w1');
    expect(verifierString(w.pub)).toMatch(/^witness\.example\/w1\+[0-9a-f]{8}\+B[A-P]/);
    expect(w.pub.keyId).not.toEqual(namePublicKey(w.name, w.key.raw).keyId);
    expect(failure(() => cosignatureVerifier(namePublicKey(w.name, w.key.raw))).code).toBe(
      'BAD_KEY',
    );
  });

  it('counts a quorum of distinct witnesses and returns their timestamps', () => {
    const [a, b, c] = [witness('w/a'), witness('w/b'), witness('w/c')];
    let note = cosignNote(checkpoint, a.key, a.name, 1_700_000_000);
    note = cosignNote(note, b.key, b.name, 1_700_000_001);
    // A second line by b (cosignNote would replace the first): b counts once, at its
    // newest time, whichever line comes first.
    const newer = signNote(note, [cosignatureSigner(b.key, b.name, 1_700_000_002)]);
    const lines = newer.signatures;
    const reordered: Note = {
      ...newer,
      signatures: [...lines.slice(0, 3), ...lines.slice(3).reverse()],
    };
    // Survives formatting: the log's own signatures are not a witness's.
    const parsed = parseNote(formatNote(newer));
    const witnesses = [a.pub, b.pub, c.pub];
    for (const order of [parsed, parseNote(formatNote(reordered))]) {
      expect(verifyCosignatures(order, witnesses, 2)).toEqual([
        { name: 'w/a', timestamp: 1_700_000_000 },
        { name: 'w/b', timestamp: 1_700_000_002 },
      ]);
    }
    expect(verifyCosignatures(parsed, witnesses, 0)).toHaveLength(2);
    const short = failure(() => verifyCosignatures(parsed, witnesses, 3));
    expect(short.code).toBe('WITNESS_QUORUM');
    expect(failure(() => verifyCosignatures(parsed, witnesses, 4)).code).toBe('WITNESS_QUORUM');
    expect(failure(() => verifyCosignatures(parsed, [], 1)).code).toBe('WITNESS_QUORUM');
  });

  it('rejects the note when a listed witness cosignature fails', () => {
    const a = witness('w/a');
    const note = cosignNote(checkpoint, a.key, a.name, 1_700_000_000);
    const cosig = note.signatures.at(-1) as Note['signatures'][0];
    const tamper = (signature: Uint8Array): Note => ({
      text: note.text,
      signatures: [...note.signatures.slice(0, -1), { ...cosig, signature }],
    });
    // Another timestamp than the one signed.
    const retimed = new Uint8Array(cosig.signature);
    retimed[7] = (retimed[7] as number) ^ 1;
    expect(failure(() => verifyCosignatures(tamper(retimed), [a.pub], 1)).code).toBe(
      'NOTE_UNVERIFIED',
    );
    // A timestamp over 2^63 - 1, truncated, or a plain Ed25519 signature without timestamp.
    const huge = new Uint8Array(cosig.signature);
    huge[0] = 0xff;
    for (const signature of [huge, cosig.signature.subarray(0, 70), cosig.signature.subarray(8)]) {
      expect(failure(() => verifyCosignatures(tamper(signature), [a.pub], 1)).code).toBe(
        'NOTE_UNVERIFIED',
      );
    }
    // The same cosignature on another checkpoint.
    const moved = {
      ...tamper(cosig.signature),
      text: formatCheckpoint({
        origin: 'log.example/a',
        size: 6,
        root: new Uint8Array(32),
        extensions: [],
      }),
    };
    expect(failure(() => verifyCosignatures(moved, [a.pub], 1)).code).toBe('NOTE_UNVERIFIED');
  });

  it('ignores cosignatures by witnesses it does not know', () => {
    const [a, stranger] = [witness('w/a'), witness('w/a')];
    const note = cosignNote(checkpoint, stranger.key, stranger.name, 1);
    expect(failure(() => verifyCosignatures(note, [a.pub], 1)).code).toBe('WITNESS_QUORUM');
  });

  it('refuses invalid cosigning times', () => {
    const a = witness('w/a');
    expect(failure(() => cosignNote(checkpoint, a.key, a.name, -1)).code).toBe('BAD_DATA');
    expect(failure(() => cosignNote(checkpoint, a.key, a.name, 2 ** 53)).code).toBe('BAD_DATA');
    expect(failure(() => cosignNote(checkpoint, a.key, a.name, maxTimestamp + 1)).code).toBe(
      'BAD_DATA',
    );
    const last = cosignNote(checkpoint, a.key, a.name, maxTimestamp);
    expect(verifyCosignatures(last, [a.pub], 1)).toEqual([
      { name: 'w/a', timestamp: maxTimestamp },
    ]);
  });

  it('rejects a cosignature dated after 9999 (a broken clock), which no date can hold', () => {
    const a = witness('w/a');
    // Milliseconds written as seconds: a correctly signed cosignature for year ~55,000.
    const timestamp = 1_700_000_000_000;
    const signature = new Uint8Array(72);
    new DataView(signature.buffer).setBigUint64(0, BigInt(timestamp));
    signature.set(signBytes(a.key, cosignedMessage(Buffer.from(checkpoint.text), timestamp)), 8);
    const note: Note = {
      ...checkpoint,
      signatures: [...checkpoint.signatures, { name: a.name, keyId: a.pub.keyId, signature }],
    };
    expect(failure(() => verifyCosignatures(note, [a.pub], 1)).code).toBe('NOTE_UNVERIFIED');
  });

  it('lets the log cosign its own checkpoint with its key as type 0x04, apart from its note signature', () => {
    const own = logCosigner(logPublic);
    expect(own).toMatchObject({ name: 'log.example/a', type: KeyType.Cosignature });
    expect(Buffer.from(own.raw)).toEqual(Buffer.from(logPublic.raw));
    // Two lines by the same name, told apart by their key IDs (c2sp.org/signed-note).
    const [signature, cosignature] = checkpoint.signatures;
    expect([signature?.name, cosignature?.name]).toEqual(['log.example/a', 'log.example/a']);
    expect(signature?.keyId).toEqual(logPublic.keyId);
    expect(cosignature?.keyId).toEqual(own.keyId);
    expect(own.keyId).not.toEqual(logPublic.keyId);
    expect(verifyCosignatures(checkpoint, [own], 0)).toEqual([
      { name: 'log.example/a', timestamp: 1_600_000_000 },
    ]);
    // A checkpoint verifier reads only the note signature, and a witness list only witnesses.
    expect(openCheckpoint(formatNote(checkpoint), logPublic).checkpoint.size).toBe(5);
    expect(verifyCosignatures(checkpoint, [witness('w/a').pub], 0)).toEqual([]);
    // Signing again replaces the log's cosignature: one line, the new time.
    const again = cosignNote(checkpoint, logKey, 'log.example/a', 1_600_000_100);
    expect(again.signatures).toHaveLength(2);
    expect(verifyCosignatures(again, [own], 0)).toEqual([
      { name: 'log.example/a', timestamp: 1_600_000_100 },
    ]);
  });
});
