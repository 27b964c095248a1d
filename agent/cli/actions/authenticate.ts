import { parseSha256 } from '../../core/digest';
import { VouchError } from '../../core/errors';
import { exitCodeOf } from '../../core/exit-codes';
import { safe } from '../../core/text';
import { verifySubjects } from '../../device/verify';
import type { Context } from '../context';

interface AuthenticateOptions {
  readonly signerID?: string;
  readonly hash: string;
  readonly silent?: boolean;
}

/**
 * A drop-in for `cas authenticate --signerID ID --hash HEX --output json`, the call Home
 * Assistant's Supervisor made: the exit code is the status number, the JSON has `hash`,
 * `status` (number), `signer`, `timestamp`, `verified`, and a failure prints
 * `{"error":{…}}` with a sysexits code (69 without trust state), never a status.
 */
export async function authenticate(ctx: Context, options: AuthenticateOptions) {
  const sha256 = parseSha256(options.hash);
  const report = await verifySubjects([{ sha256 }], {
    stateDir: ctx.config.stateDir,
    maxAge: ctx.config.sync.maxAge,
    ...(options.signerID !== undefined && { signer: options.signerID }),
  });
  const [result] = report.results;
  if (!result) throw new VouchError('INTERNAL', 'no result for the digest');
  if (result.error) throw new VouchError(result.error.code, result.error.message);
  if (report.stale) {
    (await ctx.logger()).warn(
      { freshSince: report.freshSince },
      'the trust state is stale: answering from local data; run vouch sync',
    );
  }
  const data = {
    hash: sha256,
    status: result.code,
    statusName: result.status,
    verified: result.status === 'TRUSTED',
    signer: result.signer,
    timestamp: result.issuedAt,
    name: result.name,
    logIndex: result.logIndex,
    reason: result.reason,
    stale: report.stale,
  };
  const by = result.signer ? ` by ${result.signer} at ${result.issuedAt}` : '';
  return {
    exitCode: exitCodeOf(report.results),
    data,
    text: safe`${result.status} (${result.code}) sha256:${sha256}${by}: ${result.reason}`,
  };
}
