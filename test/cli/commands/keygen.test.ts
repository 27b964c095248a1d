import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePrivateKey, parsePublicKey, verifierString } from '../../../agent/core/keys';
import { runCli } from '../../helpers/cli';

describe('vouch keygen', () => {
  it('writes <id>.key (0600) and <id>.pub and prints the verifier string', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vouch-keygen-'));
    const result = await runCli(['keygen', '--signer', 'notary@home-assistant.io', '--out', dir]);
    expect(result.exitCode).toBe(0);
    const privatePath = join(dir, 'notary@home-assistant.io.key');
    const publicPath = join(dir, 'notary@home-assistant.io.pub');
    expect(statSync(privatePath).mode & 0o777).toBe(0o600);
    const privateKey = parsePrivateKey(readFileSync(privatePath, 'utf8'));
    expect(readFileSync(privatePath, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    const publicKey = parsePublicKey(readFileSync(publicPath, 'utf8'), 'notary@home-assistant.io');
    expect(publicKey.raw).toEqual(privateKey.raw);
    expect(result.stdout).toBe(`${verifierString(publicKey)}\n`);
    expect(result.stdout).toMatch(/^notary@home-assistant\.io\+[0-9a-f]{8}\+A[A-Za-z0-9+/]{43}\n$/);

    const json = await runCli(['keygen', '--signer', 'second', '--out', dir, '-o', 'json']);
    expect(JSON.parse(json.stdout)).toEqual({
      signer: 'second',
      privateKey: join(dir, 'second.key'),
      publicKey: join(dir, 'second.pub'),
      verifier: expect.stringMatching(/^second\+/),
    });
  });

  it('makes one pair per --signer, all or none', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vouch-keygen-'));
    const result = await runCli(['keygen', '--signer', 'root', '--signer', 'log', '--out', dir]);
    expect(result.exitCode, result.stderr).toBe(0);
    const [rootLine, logLine] = result.stdout.trimEnd().split('\n');
    expect(rootLine).toBe(
      verifierString(parsePublicKey(readFileSync(join(dir, 'root.pub'), 'utf8'), 'root')),
    );
    expect(logLine).toBe(
      verifierString(parsePublicKey(readFileSync(join(dir, 'log.pub'), 'utf8'), 'log')),
    );
    const json = await runCli([
      'keygen',
      '--signer',
      'a',
      '--signer',
      'b',
      '--out',
      dir,
      '-o',
      'json',
    ]);
    expect(JSON.parse(json.stdout).map((key: { signer: string }) => key.signer)).toEqual([
      'a',
      'b',
    ]);
    // One name taken: nothing is written for the others either.
    const taken = await runCli(['keygen', '--signer', 'c', '--signer', 'root', '--out', dir]);
    expect(taken.exitCode).toBe(64);
    expect(readdirSync(dir).sort()).toEqual([
      'a.key',
      'a.pub',
      'b.key',
      'b.pub',
      'log.key',
      'log.pub',
      'root.key',
      'root.pub',
    ]);
    expect(
      (await runCli(['keygen', '--signer', 'd', '--signer', 'd', '--out', dir])).exitCode,
    ).toBe(64);
    expect(readdirSync(dir)).not.toContain('d.key');
  });

  it('never replaces a key, and writes nothing then', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vouch-keygen-'));
    writeFileSync(join(dir, 'taken.pub'), 'old');
    const result = await runCli(['keygen', '--signer', 'taken', '--out', dir]);
    expect(result.exitCode).toBe(64);
    expect(result.stderr).toBe(`vouch: ${join(dir, 'taken.pub')} exists; not replacing it\n`);
    expect(readdirSync(dir)).toEqual(['taken.pub']);
    expect(readFileSync(join(dir, 'taken.pub'), 'utf8')).toBe('old');
  });

  it.each(['a b', 'a+b', 'a/b', ''])('refuses the key name %j', async (name) => {
    const dir = mkdtempSync(join(tmpdir(), 'vouch-keygen-'));
    const result = await runCli(['keygen', '--signer', name, '--out', dir]);
    expect(result.exitCode).toBe(64);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('creates a missing directory, and says so when it cannot (exit 74)', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'vouch-keydir-'));
    const created = await runCli(['keygen', '--signer', 'x', '--out', join(parent, 'a', 'keys')]);
    expect(created.exitCode).toBe(0);
    expect(readdirSync(join(parent, 'a', 'keys')).sort()).toEqual(['x.key', 'x.pub']);

    writeFileSync(join(parent, 'file'), '');
    const result = await runCli(['keygen', '--signer', 'x', '--out', join(parent, 'file', 'keys')]);
    expect(result.exitCode).toBe(74);
  });

  it('works with keys made by openssl genpkey -algorithm ed25519', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vouch-openssl-'));
    const key = join(dir, 'ci.key');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', key]);
    execFileSync('openssl', ['pkey', '-in', key, '-pubout', '-out', join(dir, 'ci.pub')]);
    const digest = `sha256:${'0'.repeat(64)}`;
    const args = [
      'sign',
      '--key',
      key,
      '--signer',
      'ci',
      '--digest',
      digest,
      '--name',
      'n',
      '--out',
      join(dir, 'e.json'),
    ];
    // openssl writes with the umask (0644 here): refused until the owner alone can read it.
    execFileSync('chmod', ['644', key]);
    expect((await runCli(args)).exitCode).toBe(65);
    execFileSync('chmod', ['600', key]);
    expect((await runCli(args)).exitCode).toBe(0);
    const verified = await runCli([
      'envelope',
      'verify',
      '--key',
      join(dir, 'ci.pub'),
      join(dir, 'e.json'),
    ]);
    expect(verified.exitCode).toBe(0);
  });
});
