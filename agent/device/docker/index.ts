export {
  type AllowEntry,
  type AllowTarget,
  addAllowEntry,
  maxReasonLength,
  readAllowList,
  removeAllowEntries,
} from './allow';
export { type DeepCheck, type DeepLayer, deepCheck, deepPool } from './deep';
export type { EnforcementAction } from './enforce';
export { type ImageResult, type ImageVerifyOptions, verifyImage } from './image';
export { containerStopper, type StopContainer } from './stop';
export { ImageWatcher, type VerdictEvent } from './watch';
