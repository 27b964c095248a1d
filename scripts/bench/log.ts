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
import { type Figure, runSuite, scaled } from './harness';

export async function logBench(benchDir: string): Promise<Figure[]> {
  const logEntries = scaled(100_000, 5_000);
  const authorized = scaled(10_000, 1_000);
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
  const count = logEntries.toLocaleString('en');
  const figures = await runSuite('log', {
    unit: 'entries/s',
    cases: [
      {
        name: `${count} entries of ${entryTemplate.length} B: RFC 6962 leaf hashes`,
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
        name: 'append + publish (tiles, bundles, checkpoint)',
        units: logEntries,
        run: appendAndPublish,
      },
      {
        name: 'authorizeEnvelope (the check log add makes per entry)',
        units: authorized,
        run: () => {
          const now = new Date();
          for (const envelope of envelopes) authorizeEnvelope(benchRoot, envelope, now);
        },
      },
    ],
  });
  figures.push(
    ...(await runSuite('log', {
      unit: 'proofs/s',
      cases: [
        {
          name: `inclusion proofs, ${count} entries: read the tiles`,
          units: proofIndexes.length,
          run: async () => {
            for (const index of proofIndexes) {
              const tiles = tilesForNodes(inclusionProofPlan(index, logEntries).flat(), logEntries);
              for (const tile of tiles) await readFile(join(published, 'public', tilePath(tile)));
            }
          },
        },
        {
          name: "proveInclusion (vouch log proof's work)",
          units: proofIndexes.length,
          run: async () => {
            for (const index of proofIndexes) await proveInclusion(published, index);
          },
        },
      ],
    })),
  );
  return figures;
}
