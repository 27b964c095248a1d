import { describe, expect, it } from 'vitest';
import { authorizeEnvelope } from '../../agent/core/authorize';
import {
  addSignature,
  parseEnvelope,
  serializeEnvelope,
  signEnvelope,
} from '../../agent/core/dsse';
import { encodeStatement } from '../../agent/core/statement';
import { expectVouchError } from '../helpers/errors';
import { signedStatement, testKey, testRoot } from '../helpers/trust';

const now = new Date('2025-06-01T00:00:00Z');
const rootKey = testKey('root-a');
const notary = testKey('notary@home-assistant.io');
const notaryOld = testKey('notary@home-assistant.io');
const community = testKey('ci@example.org');
const root = testRoot({
  rootKeys: [rootKey.public],
  threshold: 1,
  signers: [
    {
      id: 'notary@home-assistant.io',
      keys: [notary.public, notaryOld.public],
      scopes: ['ghcr.io/home-assistant/*'],
      validFrom: '2025-01-01T00:00:00Z',
    },
    {
      id: 'ci@example.org',
      keys: [community.public],
      scopes: ['ghcr.io/example/**'],
      validUntil: '2025-12-31T00:00:00Z',
    },
  ],
});
const core = { name: 'ghcr.io/home-assistant/home-assistant:2025.6.0', sha256: 'c'.repeat(64) };

describe('authorizeEnvelope (what the log publisher accepts)', () => {
  it('accepts a statement by a listed signer, in scope and in its window', () => {
    const authorized = authorizeEnvelope(
      root,
      signedStatement(notary, {
        signer: 'notary@home-assistant.io',
        subjects: [core],
        reason: 'release',
      }),
      now,
    );
    expect(authorized.signer).toBe('notary@home-assistant.io');
    expect(authorized.keys.map((key) => key.raw)).toEqual([notary.public.raw]);
    expect(authorized.statement).toEqual({
      subjects: [core],
      status: 'trusted',
      signer: 'notary@home-assistant.io',
      issuedAt: '2025-06-01T00:00:00Z',
      reason: 'release',
    });
    // Any of the signer's keys will do.
    expect(
      authorizeEnvelope(
        root,
        signedStatement(notaryOld, { signer: 'notary@home-assistant.io', subjects: [core] }),
        now,
      ).keys,
    ).toHaveLength(1);
  });

  it('accepts a revocation of anything by a root key, under the signer ID "root"', () => {
    const revocation = signedStatement(rootKey, {
      signer: 'root',
      status: 'revoked',
      subjects: [{ name: 'docker.io/anything/at-all', sha256: 'd'.repeat(64) }],
    });
    expect(authorizeEnvelope(root, revocation, now).signer).toBe('root');
  });

  it('refuses a statement signed by no key of the root: SIGNATURE_INVALID', () => {
    const stranger = testKey('notary@home-assistant.io');
    expectVouchError(
      () =>
        authorizeEnvelope(
          root,
          signedStatement(stranger, { signer: 'notary@home-assistant.io', subjects: [core] }),
          now,
        ),
      'SIGNATURE_INVALID',
    );
  });

  it('refuses a signer the root does not list: SIGNER_UNKNOWN', () => {
    expectVouchError(
      () =>
        authorizeEnvelope(
          root,
          signedStatement(notary, { signer: 'someone-else', subjects: [core] }),
          now,
        ),
      'SIGNER_UNKNOWN',
    );
  });

  it('refuses a statement naming a signer whose keys did not sign it: SIGNER_MISMATCH', () => {
    const subject = { name: 'ghcr.io/example/app', sha256: 'e'.repeat(64) };
    expectVouchError(
      () =>
        authorizeEnvelope(
          root,
          signedStatement(notary, { signer: 'ci@example.org', subjects: [subject] }),
          now,
        ),
      'SIGNER_MISMATCH',
    );
    // A signer key may not speak as "root".
    expectVouchError(
      () =>
        authorizeEnvelope(
          root,
          signedStatement(notary, { signer: 'root', status: 'revoked', subjects: [core] }),
          now,
        ),
      'SIGNER_MISMATCH',
    );
  });

  it('refuses names outside the scopes and root keys that do more than revoke: SIGNER_OUT_OF_SCOPE', () => {
    const outside = { name: 'ghcr.io/example/app', sha256: 'e'.repeat(64) };
    expectVouchError(
      () =>
        authorizeEnvelope(
          root,
          signedStatement(notary, {
            signer: 'notary@home-assistant.io',
            subjects: [core, outside],
          }),
          now,
        ),
      'SIGNER_OUT_OF_SCOPE',
    );
    expectVouchError(
      () =>
        authorizeEnvelope(
          root,
          signedStatement(rootKey, { signer: 'root', status: 'trusted', subjects: [core] }),
          now,
        ),
      'SIGNER_OUT_OF_SCOPE',
    );
  });

  it('refuses an add-on signer naming the Home Assistant core image: SIGNER_OUT_OF_SCOPE', () => {
    // Scoped as Home Assistant names its add-ons: ghcr.io/home-assistant/{arch}-addon-{slug}.
    const developer = testKey('addons@example.org');
    const withAddons = testRoot({
      ...root,
      signers: [
        ...root.signers,
        {
          id: 'addons@example.org',
          keys: [developer.public],
          scopes: ['ghcr.io/home-assistant/*-addon-*'],
        },
      ],
    });
    const by = (name: string) =>
      signedStatement(developer, {
        signer: 'addons@example.org',
        subjects: [{ name, sha256: core.sha256 }],
      });
    expect(
      authorizeEnvelope(withAddons, by('ghcr.io/home-assistant/aarch64-addon-ssh:9.14'), now)
        .signer,
    ).toBe('addons@example.org');
    for (const name of [
      'ghcr.io/home-assistant/raspberrypi5-64-homeassistant:2025.6.0',
      'ghcr.io/home-assistant/home-assistant:2025.6.0',
    ]) {
      expectVouchError(() => authorizeEnvelope(withAddons, by(name), now), 'SIGNER_OUT_OF_SCOPE');
    }
    // A scope's * spans the tag: the core repository under a tag ending in -addon-… is in
    // scope and logged; a device checking the core image under its own tag ignores it
    // (test/cli/commands/verify-image.test.ts).
    expect(
      authorizeEnvelope(
        withAddons,
        by('ghcr.io/home-assistant/raspberrypi5-64-homeassistant:2025.6.0-addon-1'),
        now,
      ).signer,
    ).toBe('addons@example.org');
  });

  it('refuses statements outside the window, and any statement once the window has ended: SIGNER_OUT_OF_WINDOW', () => {
    expectVouchError(
      () =>
        authorizeEnvelope(
          root,
          signedStatement(notary, {
            signer: 'notary@home-assistant.io',
            subjects: [core],
            issuedAt: new Date('2024-12-31T00:00:00Z'),
          }),
          now,
        ),
      'SIGNER_OUT_OF_WINDOW',
    );
    const app = { name: 'ghcr.io/example/app', sha256: 'e'.repeat(64) };
    const inWindow = signedStatement(community, { signer: 'ci@example.org', subjects: [app] });
    expect(authorizeEnvelope(root, inWindow, now).signer).toBe('ci@example.org');
    // Backdated into the window, but logged after the key retired.
    expectVouchError(
      () => authorizeEnvelope(root, inWindow, new Date('2026-01-01T00:00:00Z')),
      'SIGNER_OUT_OF_WINDOW',
    );
  });

  it('refuses everything under an expired root: ROOT_EXPIRED', () => {
    const statement = signedStatement(notary, {
      signer: 'notary@home-assistant.io',
      subjects: [core],
    });
    expectVouchError(
      () => authorizeEnvelope({ ...root, expires: '2025-05-01T00:00:00Z' }, statement, now),
      'ROOT_EXPIRED',
    );
  });

  it('refuses other payload types and malformed statements', () => {
    const payload = encodeStatement({
      subjects: [core],
      status: 'trusted',
      signer: 'notary@home-assistant.io',
      issuedAt: now,
    });
    const wrongType = signEnvelope('application/json', payload, notary.private);
    expectVouchError(
      () => authorizeEnvelope(root, new Uint8Array(Buffer.from(serializeEnvelope(wrongType))), now),
      'PAYLOAD_TYPE_UNKNOWN',
    );
    const notStatement = signEnvelope(
      'application/vnd.in-toto+json',
      new Uint8Array(Buffer.from('{}')),
      notary.private,
    );
    expectVouchError(
      () =>
        authorizeEnvelope(root, new Uint8Array(Buffer.from(serializeEnvelope(notStatement))), now),
      'STATEMENT_INVALID',
    );
    expectVouchError(
      () => authorizeEnvelope(root, new Uint8Array(Buffer.from('{')), now),
      'ENVELOPE_INVALID',
    );
  });

  it('counts an envelope signed by two parties for the one the statement names', () => {
    const bytes = signedStatement(notary, { signer: 'notary@home-assistant.io', subjects: [core] });
    const both = addSignature(parseEnvelope(bytes), community.private);
    const authorized = authorizeEnvelope(
      root,
      new Uint8Array(Buffer.from(serializeEnvelope(both))),
      now,
    );
    expect(authorized.keys.map((key) => key.raw)).toEqual([notary.public.raw]);
  });
});
