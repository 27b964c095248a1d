import { createHash, type Hash } from 'node:crypto';
import { parentPort, type TransferListItem } from 'node:worker_threads';
import { hashLeaf } from '../../core/merkle';
import type { Reply, Request } from './protocol';

/**
 * A hashing thread of the pool (pool.ts). node:crypto is OpenSSL, which uses the SHA-NI or
 * ARMv8 SHA-2 instructions where the CPU has them. A message it does not understand throws,
 * which ends the thread: the pool then fails that thread's jobs and starts a new one.
 */
const port = parentPort;
if (!port) throw new Error('hash.worker runs as a worker thread of the hash pool');

const running = new Map<number, Hash>();

function reply(message: Reply, transfer: TransferListItem[] = []): void {
  port?.postMessage(message, transfer);
}

port.on('message', (request: Request) => {
  switch (request.op) {
    case 'update': {
      let hash = running.get(request.job);
      if (!hash) {
        hash = createHash('sha256');
        running.set(request.job, hash);
      }
      hash.update(new Uint8Array(request.buffer, 0, request.length));
      reply({ op: 'updated', job: request.job, buffer: request.buffer }, [request.buffer]);
      return;
    }
    case 'digest': {
      const hash = running.get(request.job) ?? createHash('sha256');
      running.delete(request.job);
      reply({ op: 'digest', job: request.job, digest: new Uint8Array(hash.digest()) });
      return;
    }
    case 'leaf': {
      const hash = hashLeaf(new Uint8Array(request.buffer, 0, request.length));
      const { job, index, buffer } = request;
      reply({ op: 'leaf', job, index, hash, buffer }, [buffer]);
      return;
    }
    case 'drop':
      running.delete(request.job);
      return;
    default:
      throw new Error(`hash worker: unknown request ${JSON.stringify(request)}`);
  }
});
reply({ op: 'ready' });
