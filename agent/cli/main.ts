import { run } from './program';

// No top-level await: the bundle is CommonJS (a Node single executable needs that).
void run(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  stdoutColumns: process.stdout.isTTY ? process.stdout.columns : undefined,
  stderrColumns: process.stderr.isTTY ? process.stderr.columns : undefined,
}).then((exitCode) => {
  process.exitCode = exitCode;
});
