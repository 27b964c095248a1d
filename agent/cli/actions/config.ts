import { stringify } from 'yaml';
import type { Context } from '../context';
import { ExitCode } from '../exit';
import { escapeLines } from '../text';

export function config(ctx: Context) {
  return { exitCode: ExitCode.OK, data: ctx.config, text: escapeLines(stringify(ctx.config)) };
}
