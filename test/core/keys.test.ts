import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  verify as nodeVerify,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import * as noble from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import {
  generateKey,
  isSmallOrderKey,
  isValidKeyName,
  KeyType,
  keyIdOf,
  namePublicKey,
  type PrivateKey,
  parsePrivateKey,
  parsePublicKey,
  parseVerifierString,
  signBytes,
  verifierString,
  verifyBytes,
} from '../../agent/core/keys';
import { expectVouchError } from '../helpers/errors';

noble.hashes.sha512 = sha512;

const vectors = join(import.meta.dirname, '../vectors/ed25519');
const hex = (text: string) => new Uint8Array(Buffer.from(text, 'hex'));

/** A node:crypto private key from a 32-byte RFC 8032 seed (PKCS#8 v1, RFC 8410 §7). */
function privateKeyFromSeed(seed: Uint8Array): PrivateKey {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const pem = `-----BEGIN PRIVATE KEY-----\n${der.toString('base64')}\n-----END PRIVATE KEY-----\n`;
  return parsePrivateKey(pem);
}

describe('Ed25519 through node:crypto', () => {
  // Go's crypto/ed25519 testdata: `seed‖pk:pk:msg:sig‖msg:`, RFC 8032 §7.1 TEST 1–3 first.
  const rfc8032 = gunzipSync(readFileSync(join(vectors, 'rfc8032_go_sign.input.gz')))
    .toString('utf8')
    .trim()
    .split('\n')
    .map((line) => line.split(':'));

  it('has the 128 sign.input vectors', () => {
    expect(rfc8032).toHaveLength(128);
  });

  it.each(rfc8032.map((fields, i) => [i, ...fields] as const))(
    'RFC 8032 / Go sign.input vector %i: derives the key, signs and verifies',
    (_i, secret, pk, msg, sigAndMsg) => {
      const key = privateKeyFromSeed(hex(secret.slice(0, 64)));
      expect(Buffer.from(key.raw).toString('hex')).toBe(pk);
      const signature = signBytes(key, hex(msg));
      expect(Buffer.from(signature).toString('hex')).toBe(sigAndMsg.slice(0, 128));
      expect(verifyBytes(namePublicKey('test', hex(pk)), hex(msg), signature)).toBe(true);
    },
  );

  it('RFC 8032 §7.1 TEST 1 is the first vector (empty message)', () => {
    const [secret, pk, msg, sig] = rfc8032[0] as string[];
    expect(secret?.slice(0, 64)).toBe(
      '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    );
    expect(pk).toBe('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a');
    expect(msg).toBe('');
    expect(sig?.slice(0, 32)).toBe('e5564300c360ac729086e2cc806e828a');
  });

  interface WycheproofGroup {
    publicKey: { pk: string };
    tests: { tcId: number; comment: string; msg: string; sig: string; result: string }[];
  }
  const wycheproof = JSON.parse(
    readFileSync(join(vectors, 'wycheproof_ed25519_test.json'), 'utf8'),
  ) as { numberOfTests: number; testGroups: WycheproofGroup[] };
  const wycheproofCases = wycheproof.testGroups.flatMap((group) =>
    group.tests.map((test) => ({ ...test, pk: group.publicKey.pk })),
  );

  it('runs every Wycheproof case', () => {
    expect(wycheproofCases).toHaveLength(wycheproof.numberOfTests);
    expect(wycheproofCases).toHaveLength(151);
  });

  it.each(wycheproofCases.map((test) => [test.tcId, test.comment, test] as const))(
    'Wycheproof tcId %i (%s)',
    (_id, _comment, test) => {
      const key = namePublicKey('wycheproof', hex(test.pk));
      expect(verifyBytes(key, hex(test.msg), hex(test.sig))).toBe(test.result === 'valid');
    },
  );

  interface CctvCase {
    number: number;
    key: string;
    sig: string;
    msg: string;
    flags: string[] | null;
  }
  const cctv = JSON.parse(
    readFileSync(join(vectors, 'cctv_ed25519vectors.json'), 'utf8'),
  ) as CctvCase[];
  const digestOf = (numbers: number[]) =>
    createHash('sha256').update(numbers.join(',')).digest('hex');

  it('pins which C2SP CCTV edge cases node:crypto accepts (agreement, not right answers)', () => {
    expect(cctv).toHaveLength(914);
    const accepted = cctv
      .filter((test) => {
        const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), hex(test.key)]);
        const key = createPublicKey({ key: der, format: 'der', type: 'spki' });
        return nodeVerify(null, Buffer.from(test.msg), key, hex(test.sig));
      })
      .map((test) => test.number);
    expect(accepted).toHaveLength(208);
    // A change here means OpenSSL's Ed25519 verification rules changed under us.
    expect(digestOf(accepted)).toBe(
      'cd71d91c03ad2dd9116f674780c8368f4921cd0983301da9fd304bb6725a6e6a',
    );
  });

  it('agrees with node:crypto on every CCTV case, except that it refuses small-order keys', () => {
    let refused = 0;
    const accepted: number[] = [];
    for (const test of cctv) {
      const lowOrder = test.flags?.includes('low_order_A') ?? false;
      expect(isSmallOrderKey(hex(test.key)), `case ${test.number}`).toBe(lowOrder);
      if (lowOrder) {
        expectVouchError(() => namePublicKey('cctv', hex(test.key)), 'BAD_KEY');
        refused++;
      } else if (
        verifyBytes(namePublicKey('cctv', hex(test.key)), Buffer.from(test.msg), hex(test.sig))
      ) {
        accepted.push(test.number);
      }
    }
    expect(refused).toBe(526);
    expect(accepted).toHaveLength(86);
    expect(digestOf(accepted)).toBe(
      'a6ab10812254c9079f568c287ad37b0d4a8f7219ce7351575b2b4b8d02808aa6',
    );
  });

  it('knows every encoding of a small-order point, and no ordinary key is one', () => {
    // The 8-torsion subgroup, generated from one point of order 8 with @noble/ed25519.
    const order8 = noble.Point.fromBytes(
      hex('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05'),
      true,
    );
    const torsion = Array.from({ length: 8 }, (_, k) => order8.multiply(BigInt(k + 1)).toBytes());
    expect(new Set(torsion.map((point) => Buffer.from(point).toString('hex'))).size).toBe(8);
    for (const point of torsion) {
      expect(isSmallOrderKey(point)).toBe(true);
      point[31] = (point[31] as number) ^ 0x80;
      expect(isSmallOrderKey(point)).toBe(true);
    }
    // Non-canonical y = p and y = p + 1 (y = 0 and y = 1).
    expect(isSmallOrderKey(hex(`ed${'ff'.repeat(30)}7f`))).toBe(true);
    expect(isSmallOrderKey(hex(`ee${'ff'.repeat(30)}ff`))).toBe(true);
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
        expect(isSmallOrderKey(privateKeyFromSeed(seed).raw)).toBe(false);
      }),
      { numRuns: 100 },
    );
  });

  it('refuses the identity key, under which anyone can sign anything', () => {
    const identity = hex(`01${'00'.repeat(31)}`);
    // ([S]B, S) for any S is a valid signature on every message under it (cofactorless verify).
    const sig = Buffer.concat([
      noble.Point.BASE.multiply(7n).toBytes(),
      hex(`07${'00'.repeat(31)}`),
    ]);
    const der = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), identity]);
    const raw = createPublicKey({ key: der, format: 'der', type: 'spki' });
    expect(nodeVerify(null, Buffer.from('anything'), raw, sig)).toBe(true);
    const error = expectVouchError(() => namePublicKey('id', identity), 'BAD_KEY');
    expect(error.message).toMatch(/small-order/);
    expectVouchError(
      () =>
        parseVerifierString(
          `id+${Buffer.from(keyIdOf('id', KeyType.Ed25519, identity)).toString('hex')}+${Buffer.concat([Buffer.from([1]), identity]).toString('base64')}`,
        ),
      'BAD_KEY',
    );
  });

  it('returns false, never throws, for a signature of the wrong length', () => {
    const { key } = generateKey();
    const pub = namePublicKey('k', key.raw);
    expect(verifyBytes(pub, new Uint8Array(1), new Uint8Array(63))).toBe(false);
    expect(verifyBytes(pub, new Uint8Array(1), new Uint8Array(65))).toBe(false);
    expect(verifyBytes(pub, new Uint8Array(1), new Uint8Array(0))).toBe(false);
  });
});

describe('differential: node:crypto against @noble/ed25519 and tweetnacl', () => {
  const seedAndMessage = fc.tuple(
    fc.uint8Array({ minLength: 32, maxLength: 32 }),
    fc.uint8Array({ maxLength: 512 }),
  );

  it('all three derive the same key and the same (deterministic) signature', () => {
    fc.assert(
      fc.property(seedAndMessage, ([seed, message]) => {
        const ours = privateKeyFromSeed(seed);
        const signature = signBytes(ours, message);
        expect(noble.getPublicKey(seed)).toEqual(ours.raw);
        expect(noble.sign(message, seed)).toEqual(signature);
        const naclPair = nacl.sign.keyPair.fromSeed(seed);
        expect(naclPair.publicKey).toEqual(ours.raw);
        expect(nacl.sign.detached(message, naclPair.secretKey)).toEqual(signature);
      }),
      { numRuns: 50 },
    );
  });

  it('signatures by node:crypto verify with both, and theirs with node:crypto', () => {
    fc.assert(
      fc.property(seedAndMessage, ([seed, message]) => {
        const ours = privateKeyFromSeed(seed);
        const pub = namePublicKey('k', ours.raw);
        const signature = signBytes(ours, message);
        expect(noble.verify(signature, message, ours.raw)).toBe(true);
        expect(nacl.sign.detached.verify(message, signature, ours.raw)).toBe(true);
        const naclSignature = nacl.sign.detached(
          message,
          nacl.sign.keyPair.fromSeed(seed).secretKey,
        );
        expect(verifyBytes(pub, message, naclSignature)).toBe(true);
        expect(verifyBytes(pub, message, noble.sign(message, seed))).toBe(true);
      }),
      { numRuns: 50 },
    );
  });

  it('all three reject a signature with one bit flipped', () => {
    fc.assert(
      fc.property(seedAndMessage, fc.nat(511), ([seed, message], bit) => {
        const ours = privateKeyFromSeed(seed);
        const signature = signBytes(ours, message);
        signature[bit >> 3] = (signature[bit >> 3] as number) ^ (1 << (bit & 7));
        expect(verifyBytes(namePublicKey('k', ours.raw), message, signature)).toBe(false);
        expect(noble.verify(signature, message, ours.raw)).toBe(false);
        expect(nacl.sign.detached.verify(message, signature, ours.raw)).toBe(false);
      }),
      { numRuns: 50 },
    );
  });
});

describe('C2SP signed-note verifier strings', () => {
  const example = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';

  it('reads the example key of c2sp.org/signed-note and writes it back byte for byte', () => {
    const key = parseVerifierString(example);
    expect(key.name).toBe('example.com/foo');
    expect(key.type).toBe(KeyType.Ed25519);
    expect(Buffer.from(key.keyId).toString('hex')).toBe('530d903a');
    expect(verifierString(key)).toBe(example);
  });

  it('verifies the signature of the example note in c2sp.org/signed-note', () => {
    const key = parseVerifierString(example);
    // The signature line's base64 is the 4-byte key ID followed by the Ed25519 signature.
    const line = Buffer.from(
      'Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=',
      'base64',
    );
    expect(line.subarray(0, 4)).toEqual(Buffer.from(key.keyId));
    const text = Buffer.from('This is an example message.\n');
    expect(verifyBytes(key, text, line.subarray(4))).toBe(true);
    expect(verifyBytes(key, Buffer.from('This is an example message!\n'), line.subarray(4))).toBe(
      false,
    );
  });

  it('computes the key ID as SHA-256(name ‖ 0x0A ‖ type ‖ key)[:4]', () => {
    const raw = parseVerifierString(example).raw;
    const expected = createHash('sha256')
      .update(Buffer.concat([Buffer.from('example.com/foo\n'), Buffer.from([1]), raw]))
      .digest()
      .subarray(0, 4);
    expect(Buffer.from(keyIdOf('example.com/foo', KeyType.Ed25519, raw))).toEqual(expected);
  });

  it('round-trips keys whose base64 contains "+" (the name ends at the first "+")', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (seed) => {
        const key = namePublicKey('signer@example.org', privateKeyFromSeed(seed).raw);
        const text = verifierString(key);
        expect(parseVerifierString(text).raw).toEqual(key.raw);
      }),
      { numRuns: 100 },
    );
    const plus = namePublicKey('n', hex('fb'.repeat(32)));
    expect(verifierString(plus).split('+').length).toBeGreaterThan(3);
    expect(parseVerifierString(verifierString(plus)).raw).toEqual(plus.raw);
  });

  it('keeps cosignature keys (type 0x04) apart from note keys', () => {
    const raw = parseVerifierString(example).raw;
    const witness = namePublicKey('witness.example', raw, KeyType.Cosignature);
    const parsed = parseVerifierString(verifierString(witness));
    expect(parsed.type).toBe(KeyType.Cosignature);
    expect(parsed.keyId).not.toEqual(namePublicKey('witness.example', raw).keyId);
    expectVouchError(
      () => parsePublicKey(verifierString(witness), undefined, KeyType.Ed25519),
      'BAD_KEY',
    );
    expect(parsePublicKey(verifierString(witness), undefined, KeyType.Cosignature).type).toBe(
      KeyType.Cosignature,
    );
  });

  it.each([
    ['no separators', 'example.com/foo'],
    ['a wrong key ID', 'example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k'],
    [
      'an uppercase key ID',
      'example.com/foo+530D903A+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k',
    ],
    ['an empty name', '+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k'],
    ['a truncated key', 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2'],
    [
      'an unknown key type',
      'example.com/foo+530d903a+AukyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k',
    ],
    ['bad base64', 'example.com/foo+530d903a+Aeky*Rrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k'],
  ])('rejects a verifier string with %s', (_what, text) => {
    expectVouchError(() => parseVerifierString(text), 'BAD_KEY');
  });

  it('validates key names as the spec does', () => {
    expect(isValidKeyName('notary@home-assistant.io')).toBe(true);
    expect(isValidKeyName('log.example.org/vouch')).toBe(true);
    for (const bad of ['', 'a b', 'a+b', 'a\tb', 'a\u00a0b', 'a\u0000b']) {
      expect(isValidKeyName(bad)).toBe(false);
    }
  });
});

describe('key files', () => {
  it('reads back what generateKey writes, as PEM or verifier string', () => {
    const { privatePem, publicPem, key } = generateKey();
    expect(parsePrivateKey(privatePem).raw).toEqual(key.raw);
    const pub = parsePublicKey(publicPem, 'signer');
    expect(pub.raw).toEqual(key.raw);
    expect(pub.name).toBe('signer');
    expect(parsePublicKey(verifierString(pub)).raw).toEqual(key.raw);
    expect(parsePublicKey(verifierString(pub), 'signer').name).toBe('signer');
    expectVouchError(() => parsePublicKey(verifierString(pub), 'other'), 'BAD_KEY');
    expectVouchError(() => parsePublicKey(publicPem), 'BAD_KEY');
    // node:crypto would derive the public key from a private one; we refuse the mix-up.
    expect(() => parsePublicKey(privatePem, 'signer')).toThrow(/this is a private key/);
  });

  it.each([
    ['RSA', () => generateKeyPairSync('rsa', { modulusLength: 2048 }), /got RSA/],
    ['P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }), /got EC/],
    ['X25519', () => generateKeyPairSync('x25519'), /got X25519/],
  ])('refuses %s keys where Ed25519 is required', (_name, make, message) => {
    const { privateKey, publicKey } = make();
    const privatePem = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const publicPem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expect(() => parsePrivateKey(privatePem)).toThrow(message);
    expect(() => parsePublicKey(publicPem, 'k')).toThrow(message);
    expectVouchError(() => parsePrivateKey(privatePem), 'BAD_KEY');
    expectVouchError(() => parsePublicKey(publicPem, 'k'), 'BAD_KEY');
  });

  it('refuses garbage and oversized key text with BAD_KEY', () => {
    for (const text of [
      '-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n',
      '',
      'x'.repeat(20_000),
    ]) {
      expectVouchError(() => parsePrivateKey(text), 'BAD_KEY');
    }
    expectVouchError(
      () => parsePublicKey('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', 'k'),
      'BAD_KEY',
    );
    expectVouchError(() => parsePublicKey('x'.repeat(20_000)), 'BAD_KEY');
  });
});
