import type { Reporter, TestModule } from 'vitest/node';
import { type Service, services } from '../../scripts/lib/services';
import { isSkipped, serviceTag } from './services';

/**
 * Ends the run with one plain line `vouch: N passed, N failed, N skipped` (readable by
 * CI without ANSI colours) and says how many service tests a VOUCH_SKIP_* variable
 * skipped, so a skip is never silent.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const tests = testModules.flatMap((module) => [...module.children.allTests()]);
    const count = (state: string) => tests.filter((test) => test.result().state === state).length;
    for (const service of Object.keys(services) as Service[]) {
      if (!isSkipped(service)) continue;
      const tag = serviceTag(service);
      const skipped = tests.filter(
        (test) => test.result().state === 'skipped' && test.fullName.startsWith(tag),
      ).length;
      const { skipEnv, binary } = services[service];
      process.stdout.write(
        `\n${skipped} test(s) skipped: ${skipEnv}=1 was set, so nothing that needs a real ${binary} ran.\n`,
      );
    }
    process.stdout.write(
      `\nvouch: ${count('passed')} passed, ${count('failed')} failed, ${count('skipped')} skipped\n`,
    );
  }
}
