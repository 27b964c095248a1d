import { describe, expect, it } from 'vitest';
import type { EnforceMode } from '../../../agent/config';
import type { StatusName } from '../../../agent/core/status';
import type { AllowEntry } from '../../../agent/device/docker/allow';
import { decide } from '../../../agent/device/docker/enforce';
import type { ImageResult } from '../../../agent/device/docker/image';

/**
 * The decision per verdict and mode, at the image level; what it does to running containers
 * is tested against a real dockerd in watch.test.ts.
 */

const id = `sha256:${'c'.repeat(64)}`;

function result(status: StatusName | null, mode: EnforceMode, required = true): ImageResult {
  return {
    ref: id,
    id,
    names: ['ghcr.io/example/app:1'],
    repoDigests: [`ghcr.io/example/app@sha256:${'d'.repeat(64)}`],
    requirement: { match: 'ghcr.io/example/**', signer: 'notary@example.org', required, mode },
    status,
    code: null,
    signer: null,
    logIndex: null,
    issuedAt: null,
    reason: status === null ? 'could not check: no trust state' : 'because',
    ignored: [],
    ...(status === null && { error: { code: 'NO_TRUST_STATE', message: 'no trust state' } }),
  };
}

const allowed: AllowEntry = {
  image: id,
  name: null,
  reason: 'needed until the vendor ships a fix',
  at: '2026-01-01T00:00:00Z',
  by: 'root',
};

describe('decide', () => {
  it('stops UNTRUSTED and REVOKED under enforce, warns under warn, nothing under off', () => {
    for (const status of ['UNTRUSTED', 'REVOKED'] as const) {
      for (const [mode, action] of [
        ['enforce', 'stop'],
        ['warn', 'warn'],
        ['off', 'none'],
      ] as const) {
        const decision = decide(result(status, mode), { couldNotCheck: 'warn' }, []);
        expect(decision, `${status} ${mode}`).toEqual({
          mode,
          action,
          allowedBy: null,
          why: `${status}: because`,
        });
      }
    }
  });

  it('never stops TRUSTED, UNKNOWN or UNSUPPORTED images; warns where a statement is missing or unsupported', () => {
    const cases: [StatusName, boolean, string][] = [
      ['TRUSTED', true, 'none'],
      ['UNKNOWN', false, 'none'],
      ['UNKNOWN', true, 'warn'],
      ['UNSUPPORTED', false, 'warn'],
    ];
    for (const [status, required, action] of cases) {
      const decision = decide(
        result(status, 'enforce', required),
        { couldNotCheck: 'enforce' },
        [],
      );
      expect(decision.action, `${status} required=${required}`).toBe(action);
      expect(decide(result(status, 'off', required), { couldNotCheck: 'enforce' }, []).action).toBe(
        'none',
      );
    }
  });

  it('follows couldNotCheck for an image that could not be checked, whatever the scope says', () => {
    for (const [couldNotCheck, action] of [
      ['warn', 'warn'],
      ['off', 'none'],
      ['enforce', 'stop'],
    ] as const) {
      for (const scopeMode of ['enforce', 'warn', 'off'] as const) {
        const decision = decide(result(null, scopeMode), { couldNotCheck }, []);
        expect(decision).toEqual({
          mode: couldNotCheck,
          action,
          allowedBy: null,
          // Reported as "could not check", never as UNTRUSTED.
          why: 'could not check: no trust state',
        });
      }
    }
  });

  it('an allow-list entry overrides a stop or a warning, and is not consulted otherwise', () => {
    const other = { ...allowed, image: `sha256:${'e'.repeat(64)}` };
    expect(
      decide(result('REVOKED', 'enforce'), { couldNotCheck: 'warn' }, [other, allowed]),
    ).toEqual({
      mode: 'enforce',
      action: 'stop',
      allowedBy: allowed,
      why: 'REVOKED: because',
    });
    expect(decide(result(null, 'off'), { couldNotCheck: 'warn' }, [allowed]).allowedBy).toBe(
      allowed,
    );
    expect(
      decide(result('TRUSTED', 'enforce'), { couldNotCheck: 'warn' }, [allowed]).allowedBy,
    ).toBeNull();
    expect(
      decide(result('REVOKED', 'enforce'), { couldNotCheck: 'warn' }, [other]).allowedBy,
    ).toBeNull();
    // A name entry covers the image by any of its names, repo digests included.
    const byDigest = {
      ...allowed,
      image: null,
      name: `ghcr.io/example/app@sha256:${'d'.repeat(64)}`,
    };
    expect(
      decide(result('UNTRUSTED', 'enforce'), { couldNotCheck: 'warn' }, [byDigest]).allowedBy,
    ).toBe(byDigest);
  });
});
