import type { AgentEvents } from './events';
import type { Health } from './health';
import type { AgentMetrics } from './metrics';

/** A `POST /v1/verify` body, validated: exactly one subject. */
export type VerifyRequest =
  | { readonly digest: string }
  | { readonly path: string }
  | { readonly image: string; readonly deep: boolean };

/**
 * What the local API (api.ts) serves, implemented by the agent (agent.ts). Errors are
 * thrown as VouchError; the API answers them as `{"error":{"code","message"}}`.
 */
export interface ApiBackend {
  /** `GET /v1/status`: the trust state, each service's health, the hashing plan, version. */
  status(): Promise<unknown>;
  /** `POST /v1/verify`: exactly the JSON `vouch verify … -o json` prints for the subject. */
  verify(request: VerifyRequest): Promise<unknown>;
  /** `GET /v1/verdicts`: current verdicts of local images and recently verified subjects. */
  verdicts(): Promise<unknown>;
  /** `POST /v1/sync`: a sync now, or the one running; its report. */
  sync(): Promise<unknown>;
  /** `GET /healthz`: healthy unless a service failed. */
  healthz(): { readonly ok: boolean; readonly services: Readonly<Record<string, Health>> };
  readonly events: AgentEvents;
  readonly metrics: AgentMetrics;
}
