import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { VouchError } from '../../agent/core/errors';
import { adoptable, type Thread, WorkerGroup } from '../../agent/workers/group';

/**
 * The worker group's lifecycle, with a tiny echo worker and an owner written here: start,
 * adoption, readiness, a busy worker's death (its jobs fail with WORKER_FAILED, a new
 * worker takes the next job), and the respawn budget of workers that die before they load.
 */

/** Says it is ready, echoes each message's value, holds `hold`, dies on `crash`. */
const echo = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', (message) => {
  if (message.op === 'hold') return;
  if (message.op === 'crash') throw new Error('crashed on purpose');
  parentPort.postMessage({ id: message.id, value: message.value });
});
parentPort.postMessage({ op: 'ready' });
`;
const echoWorker = () => new Worker(echo, { eval: true });
/** A worker whose code does not load. */
const brokenWorker = () => new Worker("throw new Error('no code here')", { eval: true });

interface Reply {
  readonly id: number;
  readonly value: string;
}
interface Asked {
  resolve(value: string): void;
  reject(error: unknown): void;
}
type EchoThread = Thread<{ readonly asked: Map<number, Asked> }>;

/** An owner of a group: `ask` sends a value to the least busy worker and gets it back. */
function echoGroup(
  options: { size?: number; warm?: number; start?: () => Worker } = {},
  booted?: Worker,
) {
  const events: string[] = [];
  let nextId = 0;
  const group: WorkerGroup<{ readonly asked: Map<number, Asked> }, Reply> = new WorkerGroup(
    {
      name: 'test worker',
      size: options.size ?? 2,
      warm: options.warm ?? 1,
      start: options.start ?? echoWorker,
      state: () => ({ asked: new Map<number, Asked>() }),
      receive: (thread, reply) => {
        events.push(`reply ${reply.value}`);
        thread.asked.get(reply.id)?.resolve(reply.value);
        thread.asked.delete(reply.id);
        group.answered(thread);
      },
      stopped: (thread, failure) => {
        events.push(`stopped: ${failure.message}`);
        for (const asked of thread.asked.values()) asked.reject(failure);
      },
      exited: () => events.push('exited'),
      closed: () => new VouchError('INTERNAL', 'the test group was closed'),
    },
    booted,
  );
  groups.push(group);
  const ask = (value: string, op = 'echo'): { thread: EchoThread; answer: Promise<string> } => {
    group.check();
    const thread = group.lightest((t) => t.asked.size);
    const id = nextId++;
    const answer = new Promise<string>((resolve, reject) => {
      thread.asked.set(id, { resolve, reject });
    });
    group.send(thread, { op, id, value });
    return { thread, answer };
  };
  return { group, events, ask };
}

const groups: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(groups.splice(0).map((group) => group.close()));
});

/** Resolves once `ready()` holds, checked every few milliseconds. */
async function until(ready: () => boolean): Promise<void> {
  while (!ready()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe('WorkerGroup', () => {
  it('starts `warm` workers, another while none is idle, never more than `size`', async () => {
    const { group, ask } = echoGroup({ size: 2, warm: 1 });
    expect(group.workers).toHaveLength(1);
    expect(await ask('a').answer).toBe('a');
    expect(await ask('b').answer).toBe('b');
    expect(group.workers).toHaveLength(1);
    const held = ask('held', 'hold');
    const second = ask('c');
    expect(group.workers).toHaveLength(2);
    expect(second.thread).not.toBe(held.thread);
    expect(await second.answer).toBe('c');
    ask('held too', 'hold');
    ask('d');
    expect(group.workers).toHaveLength(2);
    expect(group.all()).toHaveLength(2);
    expect(echoGroup({ size: 3, warm: 8 }).group.workers).toHaveLength(3);
  });

  it("takes a worker's first message as readiness, never as a reply", async () => {
    const { events, ask } = echoGroup({ size: 1 });
    expect(await ask('first').answer).toBe('first');
    expect(events).toEqual(['reply first']);
  });

  it('adopts a worker booted before it, loaded or not, and replaces one that stopped', async () => {
    // Loaded before the group exists: its next message is a reply.
    const loaded = adoptable(echoWorker());
    await once(loaded, 'message');
    const early = echoGroup({ size: 1 }, loaded);
    expect(early.group.workers).toEqual([loaded]);
    expect(await early.ask('x').answer).toBe('x');
    // Still loading: its first message is its readiness.
    const loading = adoptable(echoWorker());
    const late = echoGroup({ size: 1 }, loading);
    expect(late.group.workers).toEqual([loading]);
    expect(await late.ask('y').answer).toBe('y');
    // Stopped before the group exists: no crash, and a new worker serves.
    const gone = adoptable(echoWorker());
    await gone.terminate();
    const replaced = echoGroup({ size: 1 }, gone);
    expect(replaced.group.workers).toHaveLength(1);
    expect(replaced.group.workers[0]).not.toBe(gone);
    expect(await replaced.ask('z').answer).toBe('z');
  });

  it('fails the jobs of a worker that dies busy with WORKER_FAILED; a new worker takes the next', async () => {
    const { group, events, ask } = echoGroup({ size: 2, warm: 2 });
    await ask('warm').answer;
    const held = ask('held', 'hold');
    const other = ask('other', 'hold');
    const [first, second] = group.workers;
    expect(held.thread.worker).toBe(first);
    group.post(held.thread, { op: 'crash' });
    await expect(held.answer).rejects.toMatchObject({
      code: 'WORKER_FAILED',
      message: 'a test worker stopped: crashed on purpose',
    });
    expect(held.thread.dead).toBe(true);
    expect(group.workers).toHaveLength(2);
    expect(group.workers).not.toContain(first);
    expect(group.workers).toContain(second);
    // The replacement is idle: it takes the next job; the other worker's job still waits.
    const next = ask('next');
    expect(next.thread.worker).not.toBe(first);
    expect(next.thread.worker).not.toBe(second);
    expect(await next.answer).toBe('next');
    // A terminated worker the same way; 'exit' comes after its jobs failed.
    await other.thread.worker.terminate();
    await expect(other.answer).rejects.toMatchObject({
      code: 'WORKER_FAILED',
      message: 'a test worker stopped: exit code 1',
    });
    await until(() => events.filter((event) => event === 'exited').length === 2);
    expect(events.filter((event) => !event.startsWith('reply'))).toEqual([
      'stopped: a test worker stopped: crashed on purpose',
      'exited',
      'stopped: a test worker stopped: exit code 1',
      'exited',
    ]);
    expect(group.broken).toBeUndefined();
    expect(await ask('still').answer).toBe('still');
  });

  it('replaces loaded workers however often they die: only deaths before loading count', async () => {
    const { group, ask } = echoGroup({ size: 1 });
    for (let round = 0; round < 4; round++) {
      const held = ask(`held ${round}`, 'hold');
      await until(() => held.thread.ready);
      await held.thread.worker.terminate();
      await expect(held.answer).rejects.toMatchObject({ code: 'WORKER_FAILED' });
    }
    expect(group.broken).toBeUndefined();
    expect(await ask('alive').answer).toBe('alive');
  });

  it('gives up when workers keep dying before they load: broken, with WORKER_FAILED', async () => {
    let started = 0;
    const { group, events, ask } = echoGroup({
      size: 2,
      start: () => {
        started++;
        return brokenWorker();
      },
    });
    await until(() => group.broken !== undefined);
    // The first start and two replacements, then no more.
    expect(started).toBe(3);
    expect(group.broken).toBeInstanceOf(VouchError);
    expect(group.broken).toMatchObject({
      code: 'WORKER_FAILED',
      message: 'a test worker stopped: no code here',
    });
    expect(() => ask('anything')).toThrow(group.broken);
    expect(() => group.lightest(() => 0)).toThrow(group.broken);
    expect(() => group.all()).toThrow(group.broken);
    await until(() => events.filter((event) => event === 'exited').length === 3);
    expect(started).toBe(3);
  });

  it('starts nothing once closed, and does not report the workers it stopped', async () => {
    const { group, events, ask } = echoGroup({ size: 2 });
    const held = ask('held', 'hold');
    await group.close();
    expect(events.filter((event) => event.startsWith('stopped'))).toEqual([]);
    expect(held.thread.dead).toBe(true);
    expect(() => ask('late')).toThrow('the test group was closed');
    expect(() => group.lightest(() => 1)).toThrow('the test group was closed');
    expect(group.workers).toHaveLength(1);
  });
});
