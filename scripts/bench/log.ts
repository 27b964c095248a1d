/**
 * The transparency log (issue #4): 100k statements appended and published, and inclusion
 * proofs from the published tiles, against node:crypto doing only the RFC 6962 leaf hashing.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { authorizeEnvelope } from '../../agent/core/authorize';
import { serializeEnvelope, signEnvelope } from '../../agent/core/dsse';
import { generateKey, namePublicKey } from '../../agent/core/keys';
import { inclusionProofPlan } from '../../agent/core/merkle';
import type { Root } from '../../agent/core/root';
import { encodeStatement, statementPayloadType } from '../../agent/core/statement';
import { tilePath, tilesForNodes } from '../../agent/core/tiles';
import { appendEntries, initLog, proveInclusion, publishLog } from '../../agent/ledger';
import { runSuite } from './harness';

export async function logBench(benchDir: string): Promise<void> {
  const logEntries = 100_000;
  const authorized = 10_000;
  const origin = 'bench.example/log';
  const logKey = generateKey().key;
  const notary = generateKey().key;
  const benchRoot: Root = {
    version: 1,
    expires: '2099-01-01T00:00:00Z',
    rootKeys: [namePublicKey('root', generateKey().key.raw)],
    threshold: 1,
    log: { origin, key: namePublicKey(origin, logKey.raw) },
    witnesses: [],
    witnessQuorum: 0,
    signers: [{ id: 'notary', keys: [namePublicKey('notary', notary.raw)], scopes: ['**'] }],
  };
  const envelopes = Array.from({ length: authorized }, (_, i) => {
    const payload = encodeStatement({
      subjects: [
        {
          name: `ghcr.io/home-assistant/app-${i}`,
          sha256: createHash('sha256').update(`${i}`).digest('hex'),
        },
      ],
      status: 'trusted',
      signer: 'notary',
      issuedAt: new Date('2025-06-01T00:00:00Z'),
    });
    return Buffer.from(serializeEnvelope(signEnvelope(statementPayloadType, payload, notary)));
  });
  // 100k distinct entries of a real envelope's size (appending does not parse them).
  const entryTemplate = envelopes[0] as Buffer;
  const leaves = Array.from({ length: logEntries }, (_, i) => {
    const entry = Buffer.from(entryTemplate);
    entry.write(i.toString().padStart(8, '0'), entry.length - 10);
    return entry;
  });
  let published = '';
  async function appendAndPublish(): Promise<void> {
    const dir = join(mkdtempSync(join(benchDir, 'log-')), 'log');
    await initLog(dir, origin, 'unused', logKey);
    await appendEntries(dir, leaves);
    await publishLog(dir, logKey);
    published = dir;
  }
  const proofIndexes = Array.from({ length: 200 }, (_, i) => (i * 7919) % logEntries);
  const suites = [
    {
      title: `Transparency log: ${logEntries.toLocaleString('en')} entries of ${entryTemplate.length} bytes`,
      unit: 'entries',
      repeats: 2,
      cases: [
        {
          name: 'node:crypto leaf hashes (baseline)',
          units: logEntries,
          run: () => {
            for (const leaf of leaves)
              createHash('sha256')
                .update(Buffer.from([0]))
                .update(leaf)
                .digest();
          },
        },
        {
          name: 'append + publish',
          units: logEntries,
          run: appendAndPublish,
        },
        {
          name: 'authorizeEnvelope (the log add check)',
          units: authorized,
          run: () => {
            const now = new Date();
            for (const envelope of envelopes) authorizeEnvelope(benchRoot, envelope, now);
          },
        },
      ],
    },
    {
      title: `Inclusion proofs from the tiles of ${logEntries.toLocaleString('en')} entries`,
      unit: 'proofs',
      repeats: 3,
      cases: [
        {
          name: 'read the tiles of a proof (baseline)',
          units: proofIndexes.length,
          run: async () => {
            for (const index of proofIndexes) {
              const tiles = tilesForNodes(inclusionProofPlan(index, logEntries).flat(), logEntries);
              for (const tile of tiles) await readFile(join(published, 'public', tilePath(tile)));
            }
          },
        },
        {
          name: 'proveInclusion (as vouch log proof)',
          units: proofIndexes.length,
          run: async () => {
            for (const index of proofIndexes) await proveInclusion(published, index);
          },
        },
      ],
    },
  ];
  for (const suite of suites) await runSuite(suite);
}
