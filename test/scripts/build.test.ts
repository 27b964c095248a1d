import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { version } from '../../package.json';

const exec = promisify(execFile);

describe('npm run build', () => {
  it('produces a self-contained dist/vouch.cjs that runs under plain node', async () => {
    await exec('npm', ['run', 'build']);
    const { stdout } = await exec(process.execPath, ['dist/vouch.cjs', '--version']);
    expect(stdout).toBe(`${version}\n`);

    // Away from node_modules, as on a device: the bundle must need nothing beside it.
    const alone = join(mkdtempSync(join(tmpdir(), 'vouch-bundle-')), 'vouch.cjs');
    copyFileSync('dist/vouch.cjs', alone);
    const { stdout: config } = await exec(process.execPath, [alone, 'config', '-o', 'json'], {
      cwd: '/',
    });
    expect(JSON.parse(config)).toEqual({ stateDir: '/var/lib/vouch', logLevel: 'info' });
  });
});
