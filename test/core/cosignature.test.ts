import { describe, expect, it } from 'vitest';
import { formatCheckpoint, signCheckpoint } from '../../agent/core/checkpoint';
import {
  cosignatureVerifier,
  cosignedMessage,
  cosignNote,
  verifyCosignatures,
} from '../../agent/core/cosignature';
import {
  generateKey,
  KeyType,
  namePublicKey,
  type PrivateKey,
  type PublicKey,
  verifierString,
} from '../../agent/core/keys';
import { formatNote, type Note, parseNote } from '../../agent/core/note';
import { failure } from '../helpers/errors';

function witness(name: string): { key: PrivateKey; name: string; pub: PublicKey } {
  const { key } = generateKey();
  return { key, name, pub: namePublicKey(name, key.raw, KeyType.Cosignature) };
}

const logKey = generateKey().key;
const checkpoint = signCheckpoint(
  { origin: 'log.example/a', size: 5, root: new Uint8Array(32).fill(7), extensions: [] },
  logKey,
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
    note = cosignNote(note, b.key, b.name, 1_700_000_002);
    // Survives formatting: the log's own signature is simply not a cosignature.
    const parsed = parseNote(formatNote(note));
    const witnesses = [a.pub, b.pub, c.pub];
    expect(verifyCosignatures(parsed, witnesses, 2)).toEqual([
      { name: 'w/a', timestamp: 1_700_000_000 },
      { name: 'w/b', timestamp: 1_700_000_001 },
    ]);
    expect(verifyCosignatures(parsed, witnesses, 0)).toHaveLength(2);
    const short = failure(() => verifyCosignatures(parsed, witnesses, 3));
    expect(short.code).toBe('WITNESS_QUORUM');
    expect(failure(() => verifyCosignatures(parsed, witnesses, 4)).code).toBe('WITNESS_QUORUM');
    expect(failure(() => verifyCosignatures(parsed, [], 1)).code).toBe('WITNESS_QUORUM');
  });

  it('rejects the note when a listed witness cosignature fails', () => {
    const a = witness('w/a');
    const note = cosignNote(checkpoint, a.key, a.name, 1_700_000_000);
    const cosig = note.signatures[1] as Note['signatures'][0];
    const tamper = (signature: Uint8Array): Note => ({
      text: note.text,
      signatures: [note.signatures[0] as Note['signatures'][0], { ...cosig, signature }],
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
  });
});
