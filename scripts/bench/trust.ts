/**
 * Trust data at scale (issue 18): vouch's initial import of 5k, 20k and 100k statements
 * (`vouch sync`, the whole command) against `tuf-js` `Updater.refresh()` on a TUF repository
 * of 5k and 20k targets, and an incremental sync of 1k against a refresh after 1k new targets
 * with the previous version cached. Both name the same subjects and are served by one static
 * server on 127.0.0.1; the cases run round by round, interleaved.
 *
 * tuf-js takes time quadratic in the targets (@tufjs/models builds its target map with a
 * spread per target), so it is not run at 100k.
 */
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { subject } from './device';
import { type Case, type Figure, runSuite, scaled } from './harness';
import { tufClient, tufRefresh, tufRepository } from './tuf';
import { benchLog, staticServer, vouch } from './world';

const group = 'trust';
/** Statements of vouch's imports; tuf-js runs at the sizes in `tufSizes`. */
const sizes = scaled([5_000, 20_000, 100_000], [1_000, 2_000, 5_000]);
const tufSizes = new Set(scaled([5_000, 20_000], [1_000, 2_000]));
const increment = scaled(1_000, 200);

const perStatement =
  'vouch checks an author signature on every statement; a TUF client checks one signature ' +
  'per role (root, timestamp, snapshot, targets), none per target';
const tufNote =
  "tuf-js 5 Updater.refresh() in the bench's own process (no start-up), plain targets, " +
  'Ed25519 keys, consistent snapshots off';
const notAtLargest =
  'tuf-js is not run at the largest size: its refresh grows quadratically with the targets ' +
  '(@tufjs/models targetsFromJSON copies the map per target; 141 s at 20k)';

export async function trustBench(benchDir: string): Promise<Figure[]> {
  const base = await mkdtemp(join(benchDir, 'trust-'));
  const www = join(base, 'www');
  const server = await staticServer(www);
  try {
    // vouch: one log, its tiles copied at each size and after the increment on the first.
    const [first = 0] = sizes;
    const marks = [...new Set([first, first + increment, ...sizes])].sort((a, b) => a - b);
    const log = await benchLog(base);
    let made = 0;
    for (const mark of marks) {
      const subjects = Array.from({ length: mark - made }, (_, i) => subject(made + i));
      await log.add(subjects);
      made = mark;
      await cp(fileURLToPath(log.mirror), join(www, `vouch-${mark}`), { recursive: true });
    }
    // TUF: one repository, a version per size (and the increment), each copied as served.
    const tufDir = join(base, 'tuf');
    const repository = await tufRepository(tufDir, subject);
    const tufMarks = marks.filter((mark) => tufSizes.has(mark) || mark === first + increment);
    for (const mark of tufMarks) {
      await repository.publish(mark);
      await cp(tufDir, join(www, `tuf-${mark}`), { recursive: true });
    }

    const sync = async (stateDir: string, mark: number) => {
      const run = await vouch([
        ...['sync', '--state-dir', stateDir, '--root', log.rootPath],
        ...['--mirror', `${server.url}vouch-${mark}`, '--log-level', 'error'],
      ]);
      if (run.code !== 0) throw new Error(`vouch sync exited with ${run.code}`);
    };
    const fresh = () => mkdtemp(join(base, 'run-'));
    let runDir = '';
    // Each run starts from a fresh directory (or a copy of a synced one), made untimed.
    const prepare = (from?: string) => async () => {
      if (runDir) await rm(runDir, { recursive: true, force: true });
      runDir = await fresh();
      if (from) await cp(from, runDir, { recursive: true });
    };
    const name = (n: number) => n.toLocaleString('en');

    // The states the incremental runs start from: synced at the first size.
    const vouchAtFirst = await fresh();
    await sync(vouchAtFirst, first);
    const tufAtFirst = await tufClient(base, repository.rootJson);
    await tufRefresh(tufAtFirst, `${server.url}tuf-${first}`);

    const figures: Figure[] = [];
    for (const size of sizes) {
      const vouchCase: Case = {
        name: `initial import of ${name(size)} statements: vouch sync, http://`,
        prepare: prepare(),
        run: () => sync(runDir, size),
        note: perStatement,
      };
      if (!tufSizes.has(size)) {
        const [figure] = await runSuite(group, { cases: [vouchCase] });
        figures.push({ ...(figure as Figure), note: notAtLargest });
        continue;
      }
      figures.push(
        ...(await runSuite(group, {
          cases: [
            {
              name: `tuf-js refresh, ${name(size)} targets`,
              prepare: async () => {
                await prepare()();
                await cp(join(tufAtFirst, 'root.json'), join(runDir, 'root.json'));
              },
              run: () => tufRefresh(runDir, `${server.url}tuf-${size}`),
              note: tufNote,
            },
            vouchCase,
          ],
        })),
      );
    }
    figures.push(
      ...(await runSuite(group, {
        cases: [
          {
            name: `tuf-js refresh, ${name(increment)} new targets on ${name(first)} cached`,
            prepare: prepare(tufAtFirst),
            run: () => tufRefresh(runDir, `${server.url}tuf-${first + increment}`),
            note: tufNote,
          },
          {
            name: `incremental sync of ${name(increment)} on ${name(first)}: vouch sync`,
            prepare: prepare(vouchAtFirst),
            run: () => sync(runDir, first + increment),
            note: perStatement,
          },
        ],
      })),
    );
    return figures;
  } finally {
    await server.close();
    await rm(base, { recursive: true, force: true });
  }
}
