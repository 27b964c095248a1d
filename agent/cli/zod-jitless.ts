import { z } from 'zod';

/**
 * zod compiles an object schema into a function (`new Function`) on its first parse: a gain
 * for a schema parsed thousands of times, a loss for a command that parses each once (its
 * configuration, the trust root, the state's records). `vouch verify digest` measured
 * 785 M → 749 M instructions, 152 → 138 ms (docs/performance.md "Cold start"). zod reads
 * this when a schema is made, so main.ts imports this module first. The worker threads'
 * bundles keep the compiled parsers: verify.worker.ts parses thousands of statements.
 */
z.config({ jitless: true });
