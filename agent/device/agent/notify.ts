import { execFile } from 'node:child_process';
import type { Logger } from '../../logger';

/**
 * systemd's notification protocol (sd_notify(3)): a unit of `Type=notify` is started once
 * the agent sends READY=1, and told STOPPING=1 and STATUS=… as it goes. A notification is a
 * datagram on the Unix socket NOTIFY_SOCKET names (a path, or `@…` in the abstract
 * namespace); Node cannot send one (node:net has no datagram sockets, node:dgram no Unix
 * ones), so systemd-notify(1) does. It is a child process, whose messages systemd takes
 * only with `NotifyAccess=all` in the unit; `--pid` names the agent as the sender, in the
 * credentials when the child may (as root) and as MAINPID, so systemd counts the message
 * for the unit even once the child is gone. Plain `VAR=VALUE` arguments work with every
 * version (`--ready`, `--status=`, `--stopping` came later, or not at all).
 *
 * Without NOTIFY_SOCKET (not started by systemd) it does nothing. It never throws: a
 * notification that fails is logged, and a missing systemd-notify once.
 */

export interface NotifierOptions {
  readonly logger: Logger;
  /** Where NOTIFY_SOCKET is read from, and the child's environment; default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Default: `systemd-notify`, found on PATH. */
  readonly binary?: string;
  /**
   * How long systemd-notify may take (ms): after sending, it waits up to 5 s for systemd to
   * have read the message (sd_notify_barrier(3)). Default 10 s.
   */
  readonly timeoutMs?: number;
}

export class SystemdNotifier {
  readonly #options: NotifierOptions;
  #missing = false;

  constructor(options: NotifierOptions) {
    this.#options = options;
  }

  /** Whether the agent runs under systemd's notification protocol. */
  get enabled(): boolean {
    return Boolean(this.#env.NOTIFY_SOCKET);
  }

  get #env(): NodeJS.ProcessEnv {
    return this.#options.env ?? process.env;
  }

  /** Sends `READY=1`, `STOPPING=1`, `STATUS=…` (one datagram for all of them). */
  async notify(...assignments: readonly `${string}=${string}`[]): Promise<void> {
    if (!this.enabled || this.#missing || assignments.length === 0) return;
    const { logger, binary = 'systemd-notify', timeoutMs = 10_000 } = this.#options;
    // A datagram holds one assignment per line: a status quoting input (a mirror's error)
    // must not add one. NUL cannot be in an argument at all.
    const args = assignments.map((assignment) => assignment.replace(/[\n\0]/g, ' '));
    await new Promise<void>((resolve) => {
      execFile(
        binary,
        [`--pid=${process.pid}`, ...args],
        { env: this.#env, timeout: timeoutMs },
        (error, _stdout, stderr) => {
          if ((error as NodeJS.ErrnoException | null)?.code === 'ENOENT') {
            this.#missing = true;
            logger.warn(
              `${binary} not found: systemd is not told how the agent is (install systemd)`,
            );
          } else if (error) {
            const said = stderr.trim() || error.message;
            logger.warn({ notification: args }, `cannot notify systemd: ${said}`);
          }
          resolve();
        },
      );
    });
  }
}
