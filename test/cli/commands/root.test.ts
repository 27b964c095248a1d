import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { serializeEnvelope } from '../../../agent/core/dsse';
import {
  KeyType,
  parsePublicKey,
  parseVerifierString,
  verifierString,
} from '../../../agent/core/keys';
import { parseRoot, parseRootEnvelope } from '../../../agent/core/root';
import { runCli } from '../../helpers/cli';
import { signRoot, testKey, testRoot } from '../../helpers/trust';

const dir = mkdtempSync(join(tmpdir(), 'vouch-root-'));
const at = (name: string) => join(dir, name);
const cli = (...args: string[]) => runCli(args);
const rootOf = (path: string) =>
  parseRoot(parseRootEnvelope(new Uint8Array(readFileSync(path))).payload);

beforeAll(async () => {
  for (const name of [
    'root-a',
    'root-b',
    'root-c',
    'log',
    'notary@home-assistant.io',
    'witness-1',
    'witness-2',
  ]) {
    expect((await cli('keygen', '--signer', name, '--out', dir)).exitCode).toBe(0);
  }
});

describe('vouch root: the publisher workflow', () => {
  it('init takes the root version as --version, and the common options after the command', async () => {
    const init = await cli(
      'root',
      'init',
      '--out',
      at('root-v7.json'),
      '--threshold',
      '1',
      '--root-key',
      at('root-a.pub'),
      '--log-origin',
      'log.example.org/vouch',
      '--log-key',
      at('log.pub'),
      '--version',
      '7',
      '--expires',
      '30',
      '--output',
      'json',
    );
    expect(init.exitCode).toBe(0);
    expect(JSON.parse(init.stdout)).toMatchObject({ version: 7 });
    expect(rootOf(at('root-v7.json')).version).toBe(7);
  });

  it('init names signers (--signer ID=KEY) and signs (--sign KEY) in one step', async () => {
    const args = [
      ...['root', 'init', '--threshold', '1', '--root-key', at('root-a.pub')],
      ...['--log-origin', 'log.example.org/vouch', '--log-key', at('log.pub'), '--expires', '30'],
      ...['--signer', `notary@home-assistant.io=${at('notary@home-assistant.io.pub')}`],
    ];
    const init = await cli(...args, '--out', at('one-step.json'), '--sign', at('root-a.key'));
    expect(init.exitCode, init.stderr).toBe(0);
    expect(rootOf(at('one-step.json')).signers).toEqual([
      {
        id: 'notary@home-assistant.io',
        keys: [expect.objectContaining({ name: 'notary@home-assistant.io' })],
        scopes: ['**'],
      },
    ]);
    expect((await cli('root', 'verify', at('one-step.json'))).exitCode).toBe(0);
    // A key that is no root key signs nothing, and nothing is written.
    const stray = await cli(...args, '--out', at('stray.json'), '--sign', at('root-b.key'));
    expect(stray.exitCode).toBe(64);
    expect(stray.stderr).toMatch(/root-b\.key: not the key of any --root-key/);
    const badSigner = await cli(...args, '--out', at('stray.json'), '--signer', 'no-key');
    expect(badSigner.exitCode).toBe(64);
    expect(readdirSync(dir)).not.toContain('stray.json');
  });

  it('init, add-signer, sign by each holder, verify', async () => {
    const init = await cli(
      'root',
      'init',
      '--out',
      at('root.json'),
      '--threshold',
      '2',
      '--root-key',
      at('root-a.pub'),
      at('root-b.pub'),
      '--log-origin',
      'log.example.org/vouch',
      '--log-key',
      at('log.pub'),
      '--witness',
      at('witness-1.pub'),
      '--witness-quorum',
      '1',
      '--expires',
      '365',
    );
    expect(init.exitCode).toBe(0);
    expect(init.stdout).toMatch(
      /new unsigned trust root\n {2}version 1, expires .*\n {2}signed by 0 of 2 root keys \(threshold 2\)/,
    );
    const fresh = rootOf(at('root.json'));
    expect(fresh.rootKeys.map((key) => key.name)).toEqual(['root-a', 'root-b']);
    expect(fresh.log).toMatchObject({
      origin: 'log.example.org/vouch',
      key: { name: 'log.example.org/vouch', type: KeyType.Ed25519 },
    });
    expect(fresh.witnesses[0]).toMatchObject({ name: 'witness-1', type: KeyType.Cosignature });
    const days = (Date.parse(fresh.expires) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(364.9);
    expect(days).toBeLessThan(365.1);

    const add = await cli(
      'root',
      'add-signer',
      at('root.json'),
      '--id',
      'notary@home-assistant.io',
      '--key',
      at('notary@home-assistant.io.pub'),
      '--scope',
      'ghcr.io/home-assistant/*',
      '--scope',
      'haos_*.img.xz',
      '--valid-from',
      '2025-01-01',
      '--valid-until',
      '2030-01-01T12:00:00Z',
    );
    expect(add.exitCode).toBe(0);
    expect(rootOf(at('root.json')).signers).toEqual([
      {
        id: 'notary@home-assistant.io',
        keys: [expect.objectContaining({ name: 'notary@home-assistant.io' })],
        scopes: ['ghcr.io/home-assistant/*', 'haos_*.img.xz'],
        validFrom: '2025-01-01T00:00:00Z',
        validUntil: '2030-01-01T12:00:00Z',
      },
    ]);

    const unsigned = await cli('root', 'verify', at('root.json'));
    expect(unsigned.exitCode).toBe(65);
    expect(unsigned.stderr).toBe(
      'vouch: root v1 is signed by 0 of its own root keys, 2 required\n',
    );

    expect((await cli('root', 'sign', at('root.json'), '--key', at('root-a.key'))).exitCode).toBe(
      0,
    );
    const once = await cli('root', 'verify', at('root.json'), '-o', 'json');
    expect(once.exitCode).toBe(65);
    expect(JSON.parse(once.stdout).error.code).toBe('ROOT_THRESHOLD');
    const again = await cli('root', 'sign', at('root.json'), '--key', at('root-a.key'));
    expect(again.stdout).toMatch(/already signed by this key/);
    expect((await cli('root', 'sign', at('root.json'), '--key', at('root-b.key'))).exitCode).toBe(
      0,
    );

    const verified = await cli('root', 'verify', at('root.json'), '-o', 'json');
    expect(verified.exitCode).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({
      version: 1,
      threshold: 2,
      signatures: 2,
      signers: ['notary@home-assistant.io'],
      witnessQuorum: 1,
    });
    expect(
      JSON.parse(verified.stdout).signedBy.map((text: string) => parseVerifierString(text).name),
    ).toEqual(['root-a', 'root-b']);

    const show = await cli('root', 'show', at('root.json'));
    expect(show.exitCode).toBe(0);
    expect(JSON.parse(show.stdout.slice(0, show.stdout.indexOf('\n}') + 2))).toMatchObject({
      _type: 'urn:vouch:root:v1',
      version: 1,
    });
  });

  it('rotates: bump to v2 with new keys and threshold, signed by old and new holders', async () => {
    const bump = await cli(
      'root',
      'bump',
      at('root.json'),
      '--out',
      at('root-v2.json'),
      '--expires',
      '30',
      '--threshold',
      '1',
      '--root-key',
      at('root-c.pub'),
    );
    expect(bump.exitCode).toBe(0);
    const v2 = rootOf(at('root-v2.json'));
    expect([v2.version, v2.threshold, v2.rootKeys.map((key) => key.name)]).toEqual([
      2,
      1,
      ['root-c'],
    ]);
    expect(v2.signers.map((signer) => signer.id)).toEqual(['notary@home-assistant.io']);

    await cli('root', 'sign', at('root-v2.json'), '--key', at('root-c.key'));
    // Valid on its own, but not yet a rotation: v1's holders have not signed.
    expect((await cli('root', 'verify', at('root-v2.json'))).exitCode).toBe(0);
    const early = await cli(
      'root',
      'verify',
      at('root-v2.json'),
      '--trusted',
      at('root.json'),
      '-o',
      'json',
    );
    expect(JSON.parse(early.stdout).error.code).toBe('ROOT_PREVIOUS_THRESHOLD');
    // A key of v1 only: refused without v1, which says it may sign this rotation.
    const before = readFileSync(at('root-v2.json'), 'utf8');
    const alone = await cli('root', 'sign', at('root-v2.json'), '--key', at('root-a.key'));
    expect(alone.exitCode).toBe(65);
    expect(alone.stderr).toMatch(
      /is not a root key of .*root-v2\.json; v2 lists root keys root-c\+[0-9a-f]{8}\+\S+ \(threshold 1\); a key of v1 may sign this rotation when --trusted gives that root; nothing was signed\n$/,
    );
    expect(readFileSync(at('root-v2.json'), 'utf8')).toBe(before);
    // --trusted must be the version the rotation starts from, valid on its own.
    const notPrevious = await cli(
      'root',
      'sign',
      at('root-v2.json'),
      '--key',
      at('root-a.key'),
      '--trusted',
      at('root-v2.json'),
      '-o',
      'json',
    );
    expect(JSON.parse(notPrevious.stdout).error).toEqual({
      code: 'ROOT_ROLLBACK',
      message: `--trusted ${at('root-v2.json')} is root v2; a rotation to v2 starts from v1`,
    });
    expect(readFileSync(at('root-v2.json'), 'utf8')).toBe(before);
    for (const holder of ['root-a', 'root-b']) {
      const fromOld = await cli(
        'root',
        'sign',
        at('root-v2.json'),
        '--key',
        at(`${holder}.key`),
        '--trusted',
        at('root.json'),
      );
      expect(fromOld.exitCode).toBe(0);
      expect(fromOld.stdout).toMatch(
        new RegExp(`: signed by root key ${holder} of the previous version v1\n`),
      );
    }
    const rotated = await cli('root', 'verify', at('root-v2.json'), '--trusted', at('root.json'));
    expect(rotated.exitCode).toBe(0);
    expect(rotated.stdout).toMatch(/valid rotation from .*root\.json\n {2}version 2/);

    // Never back: v1 over v2.
    const back = await cli(
      'root',
      'verify',
      at('root.json'),
      '--trusted',
      at('root-v2.json'),
      '-o',
      'json',
    );
    expect(JSON.parse(back.stdout).error.code).toBe('ROOT_PREVIOUS_THRESHOLD');
  });

  it('bump takes --witness and --witness-quorum like init: new witnesses, or a new quorum', async () => {
    const replaced = await cli(
      'root',
      'bump',
      at('root.json'),
      '--out',
      at('root-witnesses.json'),
      '--expires',
      '30',
      '--witness',
      at('witness-1.pub'),
      '--witness',
      at('witness-2.pub'),
      '--witness-quorum',
      '2',
    );
    expect(replaced.exitCode, replaced.stderr).toBe(0);
    const v2 = rootOf(at('root-witnesses.json'));
    expect(v2.witnesses.map((key) => [key.name, key.type])).toEqual([
      ['witness-1', KeyType.Cosignature],
      ['witness-2', KeyType.Cosignature],
    ]);
    expect([v2.version, v2.witnessQuorum]).toEqual([2, 2]);
    expect(v2.signers.map((signer) => signer.id)).toEqual(['notary@home-assistant.io']);

    // A quorum alone applies to the witnesses carried over; without either, both carry over.
    const requorum = await cli(
      'root',
      'bump',
      at('root-witnesses.json'),
      '--out',
      at('root-quorum.json'),
      '--expires',
      '30',
      '--witness-quorum',
      '1',
    );
    expect(requorum.exitCode, requorum.stderr).toBe(0);
    const v3 = rootOf(at('root-quorum.json'));
    expect([v3.version, v3.witnesses.length, v3.witnessQuorum]).toEqual([3, 2, 1]);
    await cli(
      'root',
      'bump',
      at('root-quorum.json'),
      '--out',
      at('root-v4.json'),
      '--expires',
      '1',
    );
    expect(rootOf(at('root-v4.json'))).toMatchObject({ version: 4, witnessQuorum: 1 });
    expect(rootOf(at('root-v4.json')).witnesses).toEqual(v3.witnesses);
  });

  it('sign refuses a key the root does not list: exit 65, nothing added, what it expects', async () => {
    writeFileSync(at('strays.json'), readFileSync(at('root.json')));
    const before = readFileSync(at('strays.json'), 'utf8');
    const cases = [
      ['root-c', ''],
      ['notary@home-assistant.io', ': it is a key of signer notary@home-assistant.io'],
      ['log', ': it is the log key'],
    ];
    for (const [name, holder] of cases) {
      const key = at(`${name}.key`);
      const refused = await cli('root', 'sign', at('strays.json'), '--key', key, '-o', 'json');
      expect(refused.exitCode, name).toBe(65);
      const { code, message } = JSON.parse(refused.stdout).error;
      expect(code).toBe('ROOT_KEY_UNKNOWN');
      // The key as the last part of its verifier string, as the root lists keys.
      const publicKey = verifierString(
        parsePublicKey(readFileSync(at(`${name}.pub`), 'utf8'), 'k'),
      );
      expect(message).toBe(
        `${key} (public key ${publicKey.replace(/^k\+[0-9a-f]{8}\+/, '')}) is not a root key of ${at('strays.json')}${holder}; ` +
          `v1 lists root keys ${rootOf(at('strays.json')).rootKeys.map(verifierString).join(', ')} (threshold 2); nothing was signed`,
      );
    }
    expect(readFileSync(at('strays.json'), 'utf8')).toBe(before);
  });

  it('removes a signer and drops the now stale signatures', async () => {
    writeFileSync(at('edit.json'), readFileSync(at('root.json')));
    const removed = await cli(
      'root',
      'remove-signer',
      at('edit.json'),
      '--id',
      'notary@home-assistant.io',
    );
    expect(removed.exitCode).toBe(0);
    expect(removed.stdout).toMatch(
      /removed signer notary@home-assistant\.io; removed 2 signature\(s\): sign again/,
    );
    expect(rootOf(at('edit.json')).signers).toEqual([]);
    expect(parseRootEnvelope(new Uint8Array(readFileSync(at('edit.json')))).signatures).toEqual([]);
    const unknown = await cli(
      'root',
      'remove-signer',
      at('edit.json'),
      '--id',
      'nobody',
      '-o',
      'json',
    );
    expect([unknown.exitCode, JSON.parse(unknown.stdout).error.code]).toEqual([
      65,
      'SIGNER_UNKNOWN',
    ]);
  });

  it('reports an expired root with ROOT_EXPIRED', async () => {
    const key = testKey('root-x');
    const expired = signRoot(
      testRoot({ rootKeys: [key.public], threshold: 1, expires: '2020-01-01T00:00:00Z' }),
      [key],
    );
    writeFileSync(at('expired.json'), serializeEnvelope(expired));
    const result = await cli('root', 'verify', at('expired.json'), '-o', 'json');
    expect(result.exitCode).toBe(65);
    expect(JSON.parse(result.stdout).error).toEqual({
      code: 'ROOT_EXPIRED',
      message: 'trust root v1 expired at 2020-01-01T00:00:00Z',
    });
  });
});

describe('vouch root: bad input changes nothing', () => {
  const snapshot = () =>
    Object.fromEntries(readdirSync(dir).map((name) => [name, readFileSync(at(name), 'utf8')]));

  it.each([
    [
      'init over an existing file',
      [
        'root',
        'init',
        '--out',
        at('root.json'),
        '--threshold',
        '1',
        '--root-key',
        at('root-a.pub'),
        '--log-origin',
        'o',
        '--log-key',
        at('log.pub'),
        '--expires',
        '1',
      ],
      64,
    ],
    [
      'a threshold above the keys',
      [
        'root',
        'init',
        '--out',
        at('new.json'),
        '--threshold',
        '3',
        '--root-key',
        at('root-a.pub'),
        '--log-origin',
        'o',
        '--log-key',
        at('log.pub'),
        '--expires',
        '1',
      ],
      65,
    ],
    [
      'a witness without quorum',
      [
        'root',
        'init',
        '--out',
        at('new.json'),
        '--threshold',
        '1',
        '--root-key',
        at('root-a.pub'),
        '--log-origin',
        'o',
        '--log-key',
        at('log.pub'),
        '--witness',
        at('witness-1.pub'),
        '--expires',
        '1',
      ],
      64,
    ],
    [
      'a private key as a root key',
      [
        'root',
        'init',
        '--out',
        at('new.json'),
        '--threshold',
        '1',
        '--root-key',
        at('root-a.key'),
        '--log-origin',
        'o',
        '--log-key',
        at('log.pub'),
        '--expires',
        '1',
      ],
      65,
    ],
    [
      'a repeated root key',
      [
        'root',
        'init',
        '--out',
        at('new.json'),
        '--threshold',
        '1',
        '--root-key',
        at('root-a.pub'),
        at('root-a.pub'),
        '--log-origin',
        'o',
        '--log-key',
        at('log.pub'),
        '--expires',
        '1',
      ],
      65,
    ],
    [
      'a signer added twice',
      [
        'root',
        'add-signer',
        at('root.json'),
        '--id',
        'notary@home-assistant.io',
        '--key',
        at('root-c.pub'),
      ],
      65,
    ],
    [
      'a root key reused as a signer key',
      ['root', 'add-signer', at('root.json'), '--id', 'x', '--key', at('root-a.pub')],
      65,
    ],
    [
      'a bad date',
      [
        'root',
        'add-signer',
        at('root.json'),
        '--id',
        'x',
        '--key',
        at('witness-1.pub'),
        '--valid-from',
        'tomorrow',
      ],
      64,
    ],
    ['a root file that is garbage', ['root', 'sign', at('log.pub'), '--key', at('root-a.key')], 65],
    ['a statement given as a root', ['root', 'verify', at('statement.json')], 65],
    [
      'a bump with witnesses but no quorum',
      [
        'root',
        'bump',
        at('root.json'),
        '--out',
        at('new.json'),
        '--expires',
        '1',
        '--witness',
        at('witness-2.pub'),
      ],
      64,
    ],
    [
      'a bump with a quorum but no witnesses to count',
      [
        'root',
        'bump',
        at('root-v7.json'),
        '--out',
        at('new.json'),
        '--expires',
        '1',
        '--witness-quorum',
        '1',
      ],
      64,
    ],
    [
      'a bump with a quorum above its witnesses',
      [
        'root',
        'bump',
        at('root.json'),
        '--out',
        at('new.json'),
        '--expires',
        '1',
        '--witness-quorum',
        '2',
      ],
      65,
    ],
    [
      'a bump with the log key as a witness',
      [
        'root',
        'bump',
        at('root.json'),
        '--out',
        at('new.json'),
        '--expires',
        '1',
        '--witness',
        at('log.pub'),
        '--witness-quorum',
        '1',
      ],
      65,
    ],
    [
      'bump over an existing file',
      ['root', 'bump', at('root.json'), '--out', at('root-v2.json'), '--expires', '1'],
      64,
    ],
  ])('%s', async (_what, args, exitCode) => {
    writeFileSync(
      at('statement.json'),
      '{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}',
    );
    const before = snapshot();
    const result = await runCli(args as string[]);
    expect(result.exitCode).toBe(exitCode);
    expect(result.stderr).toMatch(/^vouch: .+\n$/);
    expect(snapshot()).toEqual(before);
  });
});
