import { describe, expect, it } from 'vitest';
import { normalizeImageName, requirementFor } from '../../agent/core/images';
import { expectVouchError } from '../helpers/errors';

const digest = `sha256:${'a'.repeat(64)}`;

describe('normalizeImageName', () => {
  // Expected values as `docker image inspect` and distribution/reference give them.
  const cases: [string, string][] = [
    ['ubuntu', 'docker.io/library/ubuntu:latest'],
    ['ubuntu:22.04', 'docker.io/library/ubuntu:22.04'],
    ['library/ubuntu', 'docker.io/library/ubuntu:latest'],
    ['docker.io/ubuntu', 'docker.io/library/ubuntu:latest'],
    ['index.docker.io/ubuntu', 'docker.io/library/ubuntu:latest'],
    ['homeassistant/home-assistant:2025.6', 'docker.io/homeassistant/home-assistant:2025.6'],
    ['ghcr.io/home-assistant/core:stable', 'ghcr.io/home-assistant/core:stable'],
    ['ghcr.io/home-assistant/core', 'ghcr.io/home-assistant/core:latest'],
    ['localhost/app', 'localhost/app:latest'],
    ['localhost:5000/app:1', 'localhost:5000/app:1'],
    ['registry.example.org:5000/a/b/c:v1.2', 'registry.example.org:5000/a/b/c:v1.2'],
    ['[::1]:5000/app:1', '[::1]:5000/app:1'],
    ['Registry/app', 'Registry/app:latest'],
    [`ubuntu@${digest}`, `docker.io/library/ubuntu@${digest}`],
    [`ghcr.io/x/y:1@${digest}`, `ghcr.io/x/y:1@${digest}`],
    ['a_b/c__d/e-f--g.h:T_1.x-y', 'docker.io/a_b/c__d/e-f--g.h:T_1.x-y'],
  ];
  for (const [ref, normalized] of cases) {
    it(`${ref} → ${normalized}`, () => {
      expect(normalizeImageName(ref)).toBe(normalized);
      // Normalizing is idempotent.
      expect(normalizeImageName(normalized)).toBe(normalized);
    });
  }

  it('refuses what is not a reference, as USAGE', () => {
    for (const bad of [
      '',
      'Ubuntu',
      'ubuntu:',
      'ubuntu:-x',
      `ubuntu:${'t'.repeat(129)}`,
      'ubuntu@sha256:xyz',
      'a//b',
      'a/b/',
      '-a/b',
      'a..b',
      'exa mple.org/app',
      'ghcr.io/UPPER/app',
      `${'a'.repeat(300)}`,
      'x'.repeat(1025),
    ]) {
      expectVouchError(() => normalizeImageName(bad), 'USAGE');
    }
  });
});

describe('requirementFor', () => {
  const policy = {
    strict: false,
    enforce: 'warn' as const,
    scopes: [
      {
        match: 'ghcr.io/home-assistant/**',
        signer: 'notary@home-assistant.io',
        enforce: 'enforce' as const,
      },
      {
        match: 'ghcr.io/home-assistant/core:*',
        signer: 'never@example.org',
        enforce: 'off' as const,
      },
      { match: 'docker.io/acme/*', enforce: 'off' as const },
    ],
  };

  it('takes the first rule, in order, that matches any name', () => {
    expect(requirementFor(['ghcr.io/home-assistant/core:stable'], policy)).toEqual({
      match: 'ghcr.io/home-assistant/**',
      signer: 'notary@home-assistant.io',
      required: true,
      mode: 'enforce',
    });
    // An image also tagged into a scope is held to that scope's rule.
    expect(
      requirementFor(['docker.io/acme/app:1', 'ghcr.io/home-assistant/x/y:1'], policy).match,
    ).toBe('ghcr.io/home-assistant/**');
    expect(requirementFor(['docker.io/acme/app:1'], policy)).toEqual({
      match: 'docker.io/acme/*',
      signer: null,
      required: true,
      mode: 'off',
    });
  });

  it('matches globs as root scopes do: * stays within a path segment', () => {
    expect(requirementFor(['docker.io/acme/sub/app:1'], policy).match).toBeNull();
  });

  it('leaves unmatched images optional, or required in strict mode, at the default mode', () => {
    const none = { match: null, signer: null, required: false, mode: 'warn' };
    expect(requirementFor(['docker.io/library/ubuntu:latest'], policy)).toEqual(none);
    expect(requirementFor([], policy)).toEqual(none);
    expect(
      requirementFor(['docker.io/library/ubuntu:latest'], {
        ...policy,
        strict: true,
        enforce: 'enforce',
      }),
    ).toEqual({ ...none, required: true, mode: 'enforce' });
    expect(
      requirementFor(['ghcr.io/home-assistant/core:1'], { ...policy, scopes: [] }).match,
    ).toBeNull();
  });
});
