import { describe, expect, it } from 'vitest';
import { evaluateStatus, type StatusRecord, type Verdict } from '../../agent/core/policy';
import { Status } from '../../agent/core/status';
import { testKey, testRoot } from '../helpers/trust';

const now = new Date('2025-06-01T00:00:00Z');
const root = testRoot({
  rootKeys: [testKey('root-a').public],
  threshold: 1,
  signers: [
    { id: 'notary', keys: [testKey('notary').public], scopes: ['ghcr.io/home-assistant/*'] },
    {
      id: 'ci',
      keys: [testKey('ci').public],
      scopes: ['ghcr.io/example/*'],
      validFrom: '2025-01-01T00:00:00Z',
      validUntil: '2025-12-31T00:00:00Z',
    },
  ],
});

/** The status name, or the outcome when there is none. */
function statusOf(verdict: Verdict): string {
  return verdict.outcome === 'status' ? verdict.status : verdict.outcome;
}

let next = 0n;
function record(fields: Partial<StatusRecord>): StatusRecord {
  next += 1n;
  return {
    logIndex: next,
    name: 'ghcr.io/home-assistant/core:1',
    status: 'trusted',
    signer: 'notary',
    issuedAt: '2025-05-01T00:00:00Z',
    ...fields,
  };
}

describe('evaluateStatus', () => {
  it('is UNKNOWN without statements', () => {
    expect(evaluateStatus([], root, now)).toEqual({
      outcome: 'status',
      status: 'UNKNOWN',
      code: Status.UNKNOWN,
      reason: 'no statement by an authorized signer',
      ignored: [],
    });
  });

  it.each([
    ['trusted', 'TRUSTED', 0],
    ['untrusted', 'UNTRUSTED', 1],
    ['unsupported', 'UNSUPPORTED', 3],
    ['revoked', 'REVOKED', 4],
  ] as const)('maps a %s statement to %s (%i)', (status, name, code) => {
    const only = record({ status, reason: 'why' });
    const verdict = evaluateStatus([only], root, now);
    expect(verdict).toMatchObject({ outcome: 'status', status: name, code, decidedBy: only });
    expect(verdict.reason).toBe(
      `marked ${status} by notary at 2025-05-01T00:00:00Z (log index ${only.logIndex}): why`,
    );
  });

  it('takes the latest statement in log order, whatever the records order or issuedAt say', () => {
    const early = record({ status: 'untrusted', issuedAt: '2025-05-30T00:00:00Z' });
    const late = record({ status: 'trusted', issuedAt: '2025-01-02T00:00:00Z' });
    expect(evaluateStatus([late, early], root, now)).toMatchObject({
      status: 'TRUSTED',
      decidedBy: late,
    });
    expect(evaluateStatus([early, late], root, now)).toMatchObject({
      status: 'TRUSTED',
      decidedBy: late,
    });
    // A later revocation by the signer wins; a later re-trust wins over that (latest wins).
    const revoked = record({ status: 'revoked' });
    expect(statusOf(evaluateStatus([early, late, revoked], root, now))).toBe('REVOKED');
    expect(statusOf(evaluateStatus([early, late, revoked, record({})], root, now))).toBe('TRUSTED');
  });

  it('lets a revocation by a root key override everything, even later statements', () => {
    const rootRevocation = record({
      signer: 'root',
      status: 'revoked',
      name: 'anything',
      reason: 'key leak',
    });
    const later = record({ status: 'trusted' });
    const verdict = evaluateStatus([rootRevocation, later], root, now);
    expect(verdict).toMatchObject({ status: 'REVOKED', code: 4, decidedBy: rootRevocation });
    expect(verdict.reason).toMatch(/^revoked by a root key at .*: key leak$/);
  });

  it('ignores and reports statements by unknown signers, out of scope or out of window', () => {
    const unknown = record({ signer: 'mallory', status: 'untrusted' });
    const outOfScope = record({
      signer: 'ci',
      name: 'ghcr.io/home-assistant/core:1',
      status: 'untrusted',
    });
    const tooEarly = record({
      signer: 'ci',
      name: 'ghcr.io/example/app',
      issuedAt: '2024-06-01T00:00:00Z',
    });
    const rootTrust = record({ signer: 'root', status: 'trusted' });
    const verdict = evaluateStatus([unknown, outOfScope, tooEarly, rootTrust], root, now);
    expect(verdict).toMatchObject({ status: 'UNKNOWN', code: 2 });
    expect(
      verdict.outcome === 'status' && verdict.ignored.map((entry) => [entry.record, entry.code]),
    ).toEqual([
      [unknown, 'SIGNER_UNKNOWN'],
      [outOfScope, 'SIGNER_OUT_OF_SCOPE'],
      [tooEarly, 'SIGNER_OUT_OF_WINDOW'],
      [rootTrust, 'SIGNER_OUT_OF_SCOPE'],
    ]);
    expect(verdict.reason).toBe('no statement by an authorized signer (4 ignored)');
    // An ignored later statement does not hide an earlier authorized one.
    const good = record({ signer: 'notary', status: 'trusted', logIndex: 0n });
    expect(evaluateStatus([good, unknown, outOfScope], root, now)).toMatchObject({
      status: 'TRUSTED',
      decidedBy: good,
    });
  });

  it('with a name, counts only signers whose scopes cover that name', () => {
    // ci may sign ghcr.io/example/*: its "untrusted" about the same digest must not
    // decide for an image checked as a Home Assistant image.
    const byNotary = record({ status: 'trusted' });
    const byCi = record({ signer: 'ci', name: 'ghcr.io/example/copy', status: 'untrusted' });
    expect(statusOf(evaluateStatus([byNotary, byCi], root, now))).toBe('UNTRUSTED');
    const named = evaluateStatus([byNotary, byCi], root, now, {
      name: 'ghcr.io/home-assistant/core:1',
    });
    expect(named).toMatchObject({ status: 'TRUSTED', decidedBy: byNotary });
    expect(named.outcome === 'status' && named.ignored[0]?.code).toBe('SIGNER_OUT_OF_SCOPE');
  });

  it('with a signer, counts only that signer, silently, and root revocations still', () => {
    const byNotary = record({ status: 'trusted' });
    const byCi = record({ signer: 'ci', name: 'ghcr.io/example/copy', status: 'untrusted' });
    const byStranger = record({ signer: 'stranger', status: 'untrusted' });
    const records = [byNotary, byCi, byStranger];
    expect(evaluateStatus(records, root, now, { signer: 'notary' })).toMatchObject({
      status: 'TRUSTED',
      decidedBy: byNotary,
      ignored: [],
    });
    expect(evaluateStatus(records, root, now, { signer: 'ci' })).toMatchObject({
      status: 'UNTRUSTED',
      decidedBy: byCi,
    });
    expect(statusOf(evaluateStatus(records, root, now, { signer: 'nobody' }))).toBe('UNKNOWN');
    const revoked = record({ signer: 'root', status: 'revoked' });
    expect(statusOf(evaluateStatus([byNotary, revoked], root, now, { signer: 'notary' }))).toBe(
      'REVOKED',
    );
  });

  it('says "could not check", never UNTRUSTED, when the root has expired', () => {
    const verdict = evaluateStatus([record({})], { ...root, expires: '2025-05-31T00:00:00Z' }, now);
    expect(verdict).toEqual({
      outcome: 'could-not-check',
      reason: 'trust root v1 expired at 2025-05-31T00:00:00Z',
    });
  });
});
