import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Checkpoint,
  formatCheckpoint,
  openCheckpoint,
  parseCheckpoint,
  signCheckpoint,
} from '../../agent/core/checkpoint';
import { VouchError } from '../../agent/core/errors';
import { generateKey, namePublicKey } from '../../agent/core/keys';
import { ed25519Signer, formatNote, signNote } from '../../agent/core/note';
import { failure } from '../helpers/errors';

const root = 'CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=';

describe('C2SP tlog-checkpoint', () => {
  it('parses the example of the specification', () => {
    const checkpoint = parseCheckpoint(`example.com/behind-the-sofa\n20852163\n${root}\n`);
    expect(checkpoint.origin).toBe('example.com/behind-the-sofa');
    expect(checkpoint.size).toBe(20852163);
    expect(Buffer.from(checkpoint.root).toString('base64')).toBe(root);
    expect(checkpoint.extensions).toEqual([]);
  });

  it('signs, opens and keeps extension lines', () => {
    const { key } = generateKey();
    const logKey = namePublicKey('log.example/a', key.raw);
    const checkpoint: Checkpoint = {
      origin: 'log.example/a',
      size: 0,
      root: new Uint8Array(32),
      extensions: ['ext one', 'ext two'],
    };
    const text = formatNote(signCheckpoint(checkpoint, key, 1_700_000_000));
    expect(text).toMatch(
      /^log\.example\/a\n0\nAAAA[A-Za-z0-9+/=]+\next one\next two\n\n\u2014 log\.example\/a /,
    );
    expect(openCheckpoint(text, logKey).checkpoint).toEqual(checkpoint);
    expect(openCheckpoint(Buffer.from(text), logKey).checkpoint.size).toBe(0);

    const other = namePublicKey('log.example/a', generateKey().key.raw);
    expect(failure(() => openCheckpoint(text, other)).code).toBe('NOTE_UNVERIFIED');
  });

  it('requires the log key to be named after the origin', () => {
    const { key } = generateKey();
    const note = signNote({ text: `other.example\n1\n${root}\n`, signatures: [] }, [
      ed25519Signer(key, 'log.example/a'),
    ]);
    const error = failure(() =>
      openCheckpoint(formatNote(note), namePublicKey('log.example/a', key.raw)),
    );
    expect(error.code).toBe('CHECKPOINT_INVALID');
  });

  it.each([
    ['two lines', `origin\n1\n`],
    ['no final newline', `origin\n1\n${root}`],
    ['an empty origin', `\n1\n${root}\n`],
    ['an empty extension line', `origin\n1\n${root}\n\next\n`],
    ['a size with a leading zero', `origin\n01\n${root}\n`],
    ['a size of 00', `origin\n00\n${root}\n`],
    ['a negative size', `origin\n-1\n${root}\n`],
    ['a size with a plus', `origin\n+1\n${root}\n`],
    ['a size in exponent form', `origin\n1e3\n${root}\n`],
    ['a size with a space', `origin\n 1\n${root}\n`],
    ['a size in hex', `origin\n0x10\n${root}\n`],
    ['a size beyond 2^53 - 1', `origin\n9007199254740992\n${root}\n`],
    ['a size beyond 2^64', `origin\n${'9'.repeat(30)}\n${root}\n`],
    ['a 31-byte root', `origin\n1\n${Buffer.alloc(31).toString('base64')}\n`],
    ['a 33-byte root', `origin\n1\n${Buffer.alloc(33).toString('base64')}\n`],
    ['a root in URL-safe base64', `origin\n1\n${Buffer.alloc(32, 0xfb).toString('base64url')}\n`],
    ['a root with a space', `origin\n1\n ${root}\n`],
    ['an oversized origin', `${'o'.repeat(1025)}\n1\n${root}\n`],
    ['an oversized extension line', `origin\n1\n${root}\n${'e'.repeat(1025)}\n`],
  ])('rejects a checkpoint with %s', (_what, text) => {
    expect(failure(() => parseCheckpoint(text)).code).toBe('CHECKPOINT_INVALID');
  });

  it('accepts the largest safe size', () => {
    expect(parseCheckpoint(`origin\n9007199254740991\n${root}\n`).size).toBe(2 ** 53 - 1);
  });

  it('parses or rejects with CHECKPOINT_INVALID, and round-trips (property)', () => {
    const line = fc.string({ maxLength: 12 }).filter((l) => !l.includes('\n'));
    fc.assert(
      fc.property(
        fc.array(fc.oneof(line, fc.constantFrom('0', '12', root, '007', '')), { maxLength: 6 }),
        (lines) => {
          const text = lines.map((l) => `${l}\n`).join('');
          try {
            const checkpoint = parseCheckpoint(text);
            expect(formatCheckpoint(checkpoint)).toBe(text);
          } catch (error) {
            expect(error).toBeInstanceOf(VouchError);
            expect((error as VouchError).code).toBe('CHECKPOINT_INVALID');
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
