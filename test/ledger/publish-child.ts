/**
 * `publishLog` in a process of its own, for publish-crash.test.ts to kill: the same call
 * as `vouch log publish`, without loading the whole CLI each time.
 */
import { readFileSync } from 'node:fs';
import { parsePrivateKey } from '../../agent/core/keys';
import { publishLog } from '../../agent/ledger';

const [dir = '', keyPath = ''] = process.argv.slice(2);
void publishLog(dir, parsePrivateKey(readFileSync(keyPath, 'utf8')));
