/**
 * pino's levels, for the configuration's `logLevel` and the CLI's `--log-level`: apart from
 * config.ts, so that the CLI's help does not build the configuration schema at every start.
 */
export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
