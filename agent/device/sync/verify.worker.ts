import { parentPort } from 'node:worker_threads';
import type { Root } from '../../core/root';
import { parseRoot } from '../../core/root';
import type { CheckReply, CheckRequest } from './checker';
import { checkEntries } from './entries';

/**
 * A thread of the entry checker (checker.ts): leaf hashes, Ed25519 signature checks and
 * statement checks for entry bundles. The root payload comes first; the main thread verified
 * its signatures.
 */
const port = parentPort;
if (!port) throw new Error('verify.worker runs as a worker thread of the entry checker');

let root: Root | undefined;

port.on('message', (request: CheckRequest) => {
  if (request.op === 'root') {
    root = parseRoot(request.payload);
    return;
  }
  if (!root) throw new Error('verify.worker: entries before the root');
  const checked = checkEntries(root, request);
  const reply: CheckReply = { op: 'checked', id: request.id, ...checked };
  port.postMessage(reply, [
    checked.leafHashes.buffer as ArrayBuffer,
    checked.records.rows.buffer as ArrayBuffer,
  ]);
});
// The checker's worker group takes a thread's first message as a sign that its code loaded.
port.postMessage({ op: 'ready' });
