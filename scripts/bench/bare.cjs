/**
 * The least a Node program does for each issue #6 case: the hash pool's reading and hashing
 * scheme (agent/content/pool/hash.worker.ts), with no CLI, configuration or trust state.
 * Its time is Node's start, a worker's boot, the reads and SHA-256 — what any Node command
 * here pays at least with that scheme; `vouch verify file` minus this is the CLI's own cost.
 *
 *   node bare.cjs plain CHUNK FILE        one worker reads FILE ahead in CHUNK-byte reads
 *   node bare.cjs main CHUNK FILE         the same on the main thread, no worker: the issue's
 *                                         "25-line Node prototype"
 *   node bare.cjs chunked WORKERS FILE    RFC 6962 leaves of 1 MiB, chunks claimed by WORKERS
 *   node bare.cjs files WORKERS FILE...   each worker reads and hashes whole files, 64 KiB reads
 *
 * Prints one hex digest per file (the Merkle root's leaves are not combined: that is
 * microseconds).
 */
'use strict';
const { Worker } = require('node:worker_threads');

/** SHA-256 of the file open as `fd`, the next CHUNK read while the last one hashes. */
async function hashAhead(fd, chunk) {
  const fs = require('node:fs');
  const buffers = [Buffer.allocUnsafe(chunk), Buffer.allocUnsafe(chunk)];
  const read = (buffer, at) =>
    new Promise((resolve, reject) =>
      fs.read(fd, buffer, 0, chunk, at, (error, n) => (error ? reject(error) : resolve(n))),
    );
  const hash = require('node:crypto').createHash('sha256');
  let at = 0;
  let next = read(buffers[0], 0);
  for (let turn = 0; ; turn ^= 1) {
    const n = await next;
    if (n === 0) break;
    at += n;
    next = read(buffers[turn ^ 1], at);
    hash.update(buffers[turn].subarray(0, n));
  }
  return hash.digest('hex');
}

const worker = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const fs = require('node:fs');
const small = Buffer.allocUnsafe(64 * 1024);
${hashAhead}
parentPort.on('message', async ({ mode, path, chunk, claims, size }) => {
  const fd = fs.openSync(path, 'r');
  if (mode === 'plain') {
    parentPort.postMessage(await hashAhead(fd, chunk));
  } else if (mode === 'leaves') {
    const leaves = [];
    for (;;) {
      const start = Number(Atomics.add(claims, 0, 1n)) * 2 ** 20;
      if (start >= size) break;
      const hash = createHash('sha256').update(Buffer.of(0));
      for (let at = start, end = Math.min(start + 2 ** 20, size); at < end; ) {
        const n = fs.readSync(fd, small, 0, Math.min(small.length, end - at), at);
        if (n === 0) throw new Error(path + ' shrank while it was hashed');
        hash.update(small.subarray(0, n));
        at += n;
      }
      leaves.push(hash.digest('hex'));
    }
    parentPort.postMessage(leaves.length);
  } else {
    const hash = createHash('sha256');
    for (let at = 0; ; ) {
      const n = fs.readSync(fd, small, 0, small.length, at);
      if (n === 0) break;
      hash.update(small.subarray(0, n));
      at += n;
    }
    parentPort.postMessage(hash.digest('hex'));
  }
  fs.closeSync(fd);
});`;

const [mode, count, ...paths] = process.argv.slice(2);
const threads = { plain: 1, main: 0 }[mode] ?? Number(count);
const workers = Array.from({ length: threads }, () => new Worker(worker, { eval: true }));
const ask = (thread, message) =>
  new Promise((resolve) => {
    thread.once('message', resolve);
    thread.postMessage(message);
  });

async function main() {
  if (mode === 'main') {
    console.log(await hashAhead(require('node:fs').openSync(paths[0], 'r'), Number(count)));
  } else if (mode === 'plain') {
    console.log(await ask(workers[0], { mode, path: paths[0], chunk: Number(count) }));
  } else if (mode === 'chunked') {
    const claims = new BigInt64Array(new SharedArrayBuffer(8));
    const size = require('node:fs').statSync(paths[0]).size;
    const message = { mode: 'leaves', path: paths[0], claims, size };
    const leaves = await Promise.all(workers.map((thread) => ask(thread, message)));
    console.log(
      leaves.reduce((sum, n) => sum + n, 0),
      'leaves',
    );
  } else {
    const queue = [...paths];
    await Promise.all(
      workers.map(async (thread) => {
        for (let path = queue.shift(); path; path = queue.shift()) {
          console.log(await ask(thread, { mode, path }));
        }
      }),
    );
  }
  await Promise.all(workers.map((thread) => thread.terminate()));
}

main();
