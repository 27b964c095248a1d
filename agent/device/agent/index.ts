export { Agent, type AgentOptions } from './agent';
export { type AgentAnswer, agentRequest } from './client';
export type { Health, HealthState } from './health';
export { type RunOptions, runAgent } from './lifecycle';
