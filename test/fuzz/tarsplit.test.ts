import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTarSplit } from '../../agent/device/docker/tarsplit';
import {
  extended,
  file,
  gzipLines,
  paxRecord,
  recordLines,
  tarHeader,
  withChecksum,
} from '../helpers/tar-split';
import { applyByteEdits, applyJsonEdit, byteEdits, fuzzAsync, jsonEdit, parsesAsync } from './fuzz';

/**
 * tar-split records (docker/tarsplit.ts) as Docker keeps them beside each layer: mutants of
 * a valid record with a directory, files, links, a pax and a GNU long link name, edited in
 * their JSON lines, in the tar headers inside the segments (checksums made right, so the
 * header parser is reached), in the decompressed text and in the gzip bytes.
 */

const lines = recordLines([
  { headers: tarHeader('d/', '5'), name: 'd/' },
  file('d/a.txt', 'hello'),
  { headers: tarHeader('l', '2', { linkname: 'd/a.txt' }), name: 'l' },
  {
    headers: [
      extended('x', Buffer.from(paxRecord('linkpath', 'x'.repeat(200)))),
      tarHeader('p', '2'),
    ],
    name: 'p',
  },
  { headers: [extended('K', Buffer.from('long/target\0')), tarHeader('g', '1')], name: 'g' },
]) as { type: number; payload?: string | null }[];

/** A byte edit inside the tar bytes of segment line `line`, its header checksums made right. */
const segmentEdit = fc.record({ line: fc.nat(), edits: byteEdits, fix: fc.boolean() });

function editSegment(
  record: typeof lines,
  { line, edits, fix }: { line: number; edits: Parameters<typeof applyByteEdits>[1]; fix: boolean },
) {
  const segments = record.flatMap((entry, i) => (entry?.type === 2 ? [i] : []));
  if (segments.length === 0) return record;
  const at = segments[line % segments.length] as number;
  // An earlier JSON edit may have left a payload of another type.
  const payload = record[at]?.payload;
  const bytes = Buffer.from(
    applyByteEdits(Buffer.from(typeof payload === 'string' ? payload : '', 'base64'), edits),
  );
  if (fix)
    for (let i = 0; i + 512 <= bytes.length; i += 512) withChecksum(bytes.subarray(i, i + 512));
  const copy = [...record];
  copy[at] = { type: 2, payload: bytes.toString('base64') };
  return copy;
}

const mutants: fc.Arbitrary<Buffer> = fc.oneof(
  fc
    .array(fc.oneof(segmentEdit, fc.record({ line: fc.nat(), edit: jsonEdit })), {
      minLength: 1,
      maxLength: 3,
    })
    .map((edits) => {
      let record = lines;
      for (const edit of edits) {
        if ('edits' in edit) record = editSegment(record, edit);
        else {
          record = [...record];
          const at = edit.line % record.length;
          record[at] = applyJsonEdit(record[at], edit.edit) as (typeof lines)[number];
        }
      }
      return gzipLines(record);
    }),
  byteEdits.map((edits) =>
    gzipSync(
      applyByteEdits(
        Buffer.from(`${lines.map((line) => JSON.stringify(line)).join('\n')}\n`),
        edits,
      ),
    ),
  ),
  byteEdits.map((edits) => Buffer.from(applyByteEdits(gzipLines(lines), edits))),
);

describe('fuzz: tar-split records', () => {
  let dir: string;
  let count = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vouch-fuzz-tarsplit-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the valid record', async () => {
    const path = join(dir, 'valid.json.gz');
    await writeFile(path, gzipLines(lines));
    expect((await readTarSplit(path)).map((entry) => entry.linkname)).toEqual([
      '',
      '',
      'd/a.txt',
      'x'.repeat(200),
      'long/target',
    ]);
  });

  it('reads mutants as entries or refuses them with BAD_DATA', async () => {
    await fuzzAsync(mutants, async (bytes) => {
      const path = join(dir, `case-${count++}.json.gz`);
      await writeFile(path, bytes);
      const entries = await parsesAsync(() => readTarSplit(path), ['BAD_DATA']);
      await rm(path);
      for (const entry of entries ?? []) {
        expect(Number.isSafeInteger(entry.size) && entry.size >= 0).toBe(true);
        if (entry.type === 'file' && entry.size > 0) expect(entry.crc).toHaveLength(8);
      }
    });
  });
});
