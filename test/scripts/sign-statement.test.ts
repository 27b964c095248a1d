import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli';
import { testKey } from '../helpers/trust';

const script = join(import.meta.dirname, '../../scripts/sign-statement.sh');

describe('scripts/sign-statement.sh (the statement format, made without vouch)', () => {
  it('signs with openssl and sh a statement that vouch verifies like its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vouch-sh-'));
    const key = testKey('ci@example.org');
    writeFileSync(join(dir, 'ci.key'), key.privatePem, { mode: 0o600 });
    writeFileSync(join(dir, 'ci.pub'), key.publicPem);
    writeFileSync(join(dir, 'app.tar'), 'application bytes');
    const envelope = execFileSync(script, ['app.tar', 'ci@example.org', 'ci.key', 'unsupported'], {
      cwd: dir,
    });
    writeFileSync(join(dir, 'envelope.json'), envelope);
    const result = await runCli([
      'envelope',
      'verify',
      '--key',
      join(dir, 'ci.pub'),
      join(dir, 'envelope.json'),
      '-o',
      'json',
    ]);
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout).statement).toEqual({
      subjects: [
        {
          name: 'app.tar',
          sha256: createHash('sha256').update('application bytes').digest('hex'),
        },
      ],
      status: 'unsupported',
      signer: 'ci@example.org',
      issuedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
    });
  });
});
