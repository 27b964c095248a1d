import { stringify } from 'yaml';
import { escapeLines } from '../../core/text';
import type { Context } from '../context';
import { ExitCode } from '../exit';

export function config(ctx: Context) {
  return { exitCode: ExitCode.OK, data: ctx.config, text: escapeLines(stringify(ctx.config)) };
}
