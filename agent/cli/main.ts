// First: before any module makes a zod schema.
import './zod-jitless';
import { readFileSync } from 'node:fs';
import { decodeSurrogateEscape } from '../core/surrogate-escape';
import { run } from './program';

/**
 * The arguments as given. Node decodes process.argv as UTF-8 and puts U+FFFD for bytes that
 * are not, so a file name such as `caf\xe9` (Latin-1) would name another file. Then the
 * arguments are read again as bytes from /proc/self/cmdline (NUL-separated; the user's are
 * its last ones, after node, its options and the script) and decoded with surrogateescape
 * (core/surrogate-escape.ts), which files.ts fsPath turns back into the same bytes. Each must
 * decode to what Node gave, with U+FFFD; else (no /proc) Node's are taken as they are.
 */
function commandLine(): string[] {
  const given = process.argv.slice(2);
  if (!given.some((arg) => arg.includes('\ufffd'))) return given;
  let raw: Buffer;
  try {
    raw = readFileSync('/proc/self/cmdline');
  } catch {
    return given;
  }
  // Latin-1 maps each byte to one character and back: a split on NUL bytes.
  const all = raw.toString('latin1').split('\0').slice(0, -1);
  const mine = all.slice(-given.length).map((field) => Buffer.from(field, 'latin1'));
  const same =
    mine.length === given.length && mine.every((bytes, i) => bytes.toString('utf8') === given[i]);
  return same ? mine.map(decodeSurrogateEscape) : given;
}

// A reader that went away (`vouch --help | head`) is not an error of ours: end quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
}

// No top-level await: the bundle is CommonJS (a Node single executable needs that).
void run(commandLine(), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  stdoutColumns: process.stdout.isTTY ? process.stdout.columns : undefined,
  stderrColumns: process.stderr.isTTY ? process.stderr.columns : undefined,
}).then((exitCode) => {
  process.exitCode = exitCode;
});
