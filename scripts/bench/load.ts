/**
 * The agent's API under load (issue 18): `autocannon` (its CLI, a process of its own) keeps
 * 1,000 requests in flight on the agent's Unix socket — 1,000 connections, one request each
 * at a time — for `GET /v1/status` and `POST /v1/verify {"digest":…}`; the baseline is a bare
 * node:http server on a Unix socket answering a fixed JSON, loaded the same way, round by
 * round. Figures: requests per second, p50 and p99 latency, errors (non-2xx answers,
 * connection errors, timeouts), and the agent's RSS before and after.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { agentRequest } from '../../agent/device/agent';
import { startDaemon } from '../lib/daemon';
import { waitFor } from '../lib/services';
import { type BenchAgent, rssOf, startAgent } from './agent';
import { type Figure, median, rounds, scaled } from './harness';
import { benchLog, exec, syncedState } from './world';

const group = 'load';
const inFlight = 1_000;
/** Requests per run: enough for each connection to send several. */
const requests = scaled(20_000, 3_000);

/** What autocannon --json prints, of it what is used here. */
interface Cannon {
  readonly requests: { readonly total: number };
  readonly latency: { readonly p50: number; readonly p99: number };
  readonly errors: number;
  readonly timeouts: number;
  readonly non2xx: number;
  /** Seconds, from the first connection to the last answer. */
  readonly duration: number;
}

const autocannon = createRequire(import.meta.url).resolve('autocannon/autocannon.js');

/** One autocannon run against `path` on `socket`. */
async function cannon(socket: string, path: string, body?: unknown): Promise<Cannon> {
  const { stdout } = await exec(
    process.execPath,
    [
      autocannon,
      ...['--json', '-S', socket, '-c', String(inFlight), '-a', String(requests), '-t', '30'],
      ...(body === undefined
        ? []
        : ['-m', 'POST', '-H', 'content-type=application/json', '-b', JSON.stringify(body)]),
      `http://localhost${path}`,
    ],
    { maxBuffer: 64 * 2 ** 20 },
  );
  return JSON.parse(stdout) as Cannon;
}

/** A bare node:http server on a Unix socket, answering every request with a fixed JSON. */
const bareServer = `
const body = JSON.stringify({ status: 'ok', version: 1 });
require('node:http')
  .createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
  })
  .listen(process.argv[1]);`;

export async function loadBench(benchDir: string): Promise<Figure[]> {
  const base = await mkdtemp(join(benchDir, 'load-'));
  const sha256 = createHash('sha256').update('load').digest('hex');
  const log = await benchLog(await mkdtemp(join(base, 'log-')));
  await log.add([{ name: 'load', sha256 }]);
  const stateDir = await syncedState(base, log);
  const bareSocket = join(base, 'bare.sock');
  const bare = startDaemon(process.execPath, ['-e', bareServer, bareSocket]);
  let agent: BenchAgent | undefined;
  try {
    await waitFor(
      'the bare server',
      async () => (await agentRequest(bareSocket, 'GET', '/', { timeoutMs: 1000 })).status > 0,
      10_000,
      () => bare.exitError(),
    );
    agent = await startAgent(base, 'load', stateDir, log.mirror);
    const rssBefore = await rssOf(agent.pid);
    const cases = [
      { name: 'bare node:http server, fixed JSON', run: () => cannon(bareSocket, '/') },
      { name: 'agent: GET /v1/status', run: () => cannon(agent?.socket ?? '', '/v1/status') },
      {
        name: 'agent: POST /v1/verify {"digest":…}',
        run: () => cannon(agent?.socket ?? '', '/v1/verify', { digest: `sha256:${sha256}` }),
      },
    ];
    const results = cases.map(() => [] as Cannon[]);
    // The agent's RSS after each round: bounded, or growing with the requests served.
    const rssAfter: number[] = [];
    for (let round = -1; round < rounds(); round++) {
      for (const [i, entry] of cases.entries()) {
        const result = await entry.run();
        if (round >= 0) results[i]?.push(result);
      }
      rssAfter.push(await rssOf(agent.pid));
    }

    const figures: Figure[] = [];
    const [bareRuns = [], ...agentRuns] = results;
    const baselineOf = (name: string, values: readonly number[]) => ({
      name,
      value: median(values),
    });
    const [bareCase, ...agentCases] = cases;
    const bareName = `${bareCase?.name}, ${inFlight.toLocaleString('en')} in flight`;
    const add = (name: string, runs: readonly Cannon[], baselineRuns?: readonly Cannon[]) => {
      const withBaseline = (suffix: string, values: (r: Cannon) => number, unit: string) => {
        figures.push({
          group,
          name: `${name}: ${suffix}`,
          value: median(runs.map(values)),
          unit,
          runs: runs.map(values),
          ...(baselineRuns
            ? { baseline: baselineOf(`${bareName}: ${suffix}`, baselineRuns.map(values)) }
            : {}),
        });
      };
      withBaseline('requests/s', (r) => r.requests.total / r.duration, 'req/s');
      withBaseline('latency p50', (r) => r.latency.p50 / 1000, 's');
      withBaseline('latency p99', (r) => r.latency.p99 / 1000, 's');
      const errors = runs.reduce((sum, r) => sum + r.errors + r.timeouts + r.non2xx, 0);
      figures.push({
        group,
        name: `${name}: errors, non-2xx, timeouts (all runs)`,
        value: errors,
        unit: 'errors',
        target: { on: 'value', op: '≤', bound: 0, note: 'issue 18: no errors under load' },
      });
    };
    add(bareName, bareRuns);
    for (const [i, entry] of agentCases.entries()) add(entry.name, agentRuns[i] ?? [], bareRuns);
    const rssName = 'agent RSS before the load';
    figures.push(
      { group, name: rssName, value: rssBefore, unit: 'B' },
      {
        group,
        name: `agent RSS after ${((rounds() + 1) * 2 * requests).toLocaleString('en')} requests`,
        value: rssAfter.at(-1) ?? Number.NaN,
        unit: 'B',
        baseline: { name: rssName, value: rssBefore },
        runs: rssAfter,
        note: 'runs: the RSS after each round (the first is the warm-up round)',
      },
    );
    return figures;
  } finally {
    await agent?.daemon.stop();
    await bare.stop();
    await rm(base, { recursive: true, force: true });
  }
}
