import { type Logger, type LoggerOptions, pino } from 'pino';
import pretty from 'pino-pretty';
import { escapeText } from './core/text';

export type { Logger };

/**
 * The daemon logs JSON lines to stderr (for journald / the HA Supervisor log);
 * the CLI logs short readable lines to stderr so stdout stays the command's output.
 * Libraries never create loggers: they take one (or a child) from their caller.
 */
export function createLogger(mode: 'cli' | 'daemon', level: LoggerOptions['level']): Logger {
  const options: LoggerOptions = { name: 'vouch', level };
  if (mode === 'daemon') return pino(options, pino.destination({ fd: 2, sync: false }));
  // pino-pretty as a synchronous stream, not a transport: transports need a worker file
  // on disk, which a single-file bundle does not have.
  return pino(
    options,
    pretty({
      destination: 2,
      sync: true,
      ignore: 'pid,hostname,name',
      translateTime: 'SYS:HH:MM:ss',
      // Messages quote input (a mirror's error, a container's name): escaped as the CLI's
      // text output is (core/text.ts). The fields are printed as JSON values already.
      messageFormat: (log, key) => escapeText(String(log[key] ?? '')),
    }),
  );
}
