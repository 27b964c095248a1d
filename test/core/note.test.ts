import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VouchError } from '../../agent/core/errors';
import {
  generateKey,
  KeyType,
  namePublicKey,
  type PrivateKey,
  parseVerifierString,
} from '../../agent/core/keys';
import {
  ed25519Signer,
  ed25519Verifier,
  formatNote,
  maxNoteSize,
  type Note,
  parseNote,
  signNote,
  verifyNote,
} from '../../agent/core/note';
import { failure } from '../helpers/errors';

function keyPair(name: string): { key: PrivateKey; verifier: ReturnType<typeof ed25519Verifier> } {
  const { key } = generateKey();
  return { key, verifier: ed25519Verifier(namePublicKey(name, key.raw)) };
}

function signed(text: string, ...keys: { key: PrivateKey; name: string }[]): string {
  return formatNote(
    signNote(
      { text, signatures: [] },
      keys.map(({ key, name }) => ed25519Signer(key, name)),
    ),
  );
}

describe('C2SP signed-note', () => {
  it('verifies the example of the signed-note specification', () => {
    const key = parseVerifierString(
      'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k',
    );
    const note = parseNote(
      'This is an example message.\n\n' +
        '\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n',
    );
    expect(note.text).toBe('This is an example message.\n');
    const [verified] = verifyNote(note, [ed25519Verifier(key)]);
    expect(verified?.verifier.name).toBe('example.com/foo');

    const altered = { ...note, text: 'This is an example message!\n' };
    expect(failure(() => verifyNote(altered, [ed25519Verifier(key)])).code).toBe('NOTE_UNVERIFIED');
  });

  it('verifies the example of golang.org/x/mod/sumdb/note', () => {
    const key = parseVerifierString(
      'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW',
    );
    const note = parseNote(
      'If you think cryptography is the answer to your problem,\n' +
        "then you don't know what your problem is.\n\n" +
        '\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n',
    );
    expect(verifyNote(note, [ed25519Verifier(key)])).toHaveLength(1);
  });

  it('signs and formats notes that parse back and verify', () => {
    const alice = keyPair('alice.example/log');
    const text = 'first line\n\nafter an empty line\n';
    const note = parseNote(signed(text, { key: alice.key, name: 'alice.example/log' }));
    // The text is separated from the signatures by the last empty line.
    expect(note.text).toBe(text);
    expect(verifyNote(note, [alice.verifier])).toHaveLength(1);
  });

  it('ignores unknown signatures, even with a known name or key ID, and accepts many', () => {
    const known = keyPair('known');
    const others = Array.from({ length: 19 }, (_, i) => ({
      key: generateKey().key,
      name: `other${i}`,
    }));
    const text = 'hello\n';
    const note = parseNote(signed(text, ...others, { key: known.key, name: 'known' }));
    expect(note.signatures).toHaveLength(20);
    expect(verifyNote(note, [known.verifier])).toHaveLength(1);

    // Same name, other key (so another key ID): ignored, so nothing verifies.
    const impostor = parseNote(signed(text, { key: generateKey().key, name: 'known' }));
    expect(failure(() => verifyNote(impostor, [known.verifier])).code).toBe('NOTE_UNVERIFIED');
    // Same key ID under another name: ignored as well.
    const renamed: Note = {
      text,
      signatures: [
        {
          ...(impostor.signatures[0] as Note['signatures'][0]),
          keyId: known.verifier.keyId,
          name: 'stranger',
        },
      ],
    };
    expect(failure(() => verifyNote(renamed, [known.verifier])).code).toBe('NOTE_UNVERIFIED');
  });

  it('accepts sixteen signatures by sixteen known keys', () => {
    const keys = Array.from({ length: 16 }, (_, i) => ({ ...keyPair(`k${i}`), name: `k${i}` }));
    const note = parseNote(signed('sixteen\n', ...keys));
    expect(
      verifyNote(
        note,
        keys.map((k) => k.verifier),
      ),
    ).toHaveLength(16);
  });

  it('rejects the note when a known key signature fails, even next to a valid one', () => {
    const a = keyPair('a');
    const note = parseNote(signed('text\n', { key: a.key, name: 'a' }));
    const good = note.signatures[0] as Note['signatures'][0];
    const bad = { ...good, signature: good.signature.map((b, i) => (i === 0 ? b ^ 1 : b)) };
    const both: Note = { text: note.text, signatures: [good, bad] };
    const error = failure(() => verifyNote(both, [a.verifier]));
    expect(error.code).toBe('NOTE_UNVERIFIED');
    expect(error.message).toMatch(/does not verify/);
  });

  it('only takes type 0x01 keys as note verifiers', () => {
    const key = namePublicKey('w', generateKey().key.raw, KeyType.Cosignature);
    expect(failure(() => ed25519Verifier(key)).code).toBe('BAD_KEY');
  });

  const sig = '\u2014 a AAAAAAE=\n';
  it.each([
    ['no blank line', 'text\n\u2014 a AAAAAAE=\n'],
    ['no final newline', 'text\n\n\u2014 a AAAAAAE='],
    ['no signature', 'text\n\n'],
    ['an empty signature line', `text\n\n${sig}\n`],
    ['a tab', `te\txt\n\n${sig}`],
    ['a carriage return', `text\r\n\n${sig}`],
    ['a NUL', `te\u0000xt\n\n${sig}`],
    ['an escape', `te\u001bxt\n\n${sig}`],
    ['a lone surrogate', `te\ud800xt\n\n${sig}`],
    ['a hyphen for the em dash', 'text\n\n- a AAAAAAE=\n'],
    ['two spaces', 'text\n\n\u2014  a AAAAAAE=\n'],
    ['a trailing space', 'text\n\n\u2014 a AAAAAAE= \n'],
    ['a plus in the key name', 'text\n\n\u2014 a+b AAAAAAE=\n'],
    ['unpadded base64', 'text\n\n\u2014 a AAAAAAE\n'],
    ['non-base64', 'text\n\n\u2014 a AAAA*AE=\n'],
    ['a signature of only a key ID', 'text\n\n\u2014 a AAAAAA==\n'],
    ['101 signatures', `text\n\n${sig.repeat(101)}`],
    ['an oversized signature line', `text\n\n\u2014 a ${'A'.repeat(8192)}\n`],
    ['more than the size cap', `${'a'.repeat(maxNoteSize)}\n\n${sig}`],
  ])('rejects a note with %s', (_what, text) => {
    expect(failure(() => parseNote(text)).code).toBe('NOTE_INVALID');
  });

  it('rejects bytes that are not UTF-8', () => {
    const bytes = Buffer.concat([
      Buffer.from('te'),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(`xt\n\n${sig}`),
    ]);
    expect(failure(() => parseNote(bytes)).code).toBe('NOTE_INVALID');
    expect(parseNote(Buffer.from(`text\n\n${sig}`)).text).toBe('text\n');
  });

  it('never throws anything but NOTE_INVALID on arbitrary input (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc.string({ unit: 'binary', maxLength: 300 }),
          fc
            .array(fc.constantFrom('a', '\n', '\u2014', ' ', 'A', '=', '+', '/', '\t'), {
              maxLength: 80,
            })
            .map((chars) => chars.join('')),
        ),
        (input) => {
          try {
            const note = parseNote(input);
            expect(parseNote(formatNote(note))).toEqual(note);
          } catch (error) {
            expect(error).toBeInstanceOf(VouchError);
            expect((error as VouchError).code).toBe('NOTE_INVALID');
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('round-trips any well-formed note (property)', () => {
    const line = fc
      .string({ unit: 'grapheme', maxLength: 40 })
      .filter((l) => [...l].every((char) => char >= ' '));
    const signature = fc.record({
      name: fc.stringMatching(/^[a-z0-9./-]{1,20}$/),
      keyId: fc.uint8Array({ minLength: 4, maxLength: 4 }),
      signature: fc.uint8Array({ minLength: 1, maxLength: 80 }),
    });
    fc.assert(
      fc.property(
        fc.array(line, { minLength: 1, maxLength: 5 }),
        fc.array(signature, { minLength: 1, maxLength: 17 }),
        (lines, signatures) => {
          const note: Note = { text: lines.map((l) => `${l}\n`).join(''), signatures };
          expect(parseNote(formatNote(note))).toEqual(note);
        },
      ),
    );
  });
});
