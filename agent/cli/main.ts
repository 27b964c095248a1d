import { run } from './program';

// No top-level await: the bundle is CommonJS (a Node single executable needs that).
void run(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
}).then((exitCode) => {
  process.exitCode = exitCode;
});
