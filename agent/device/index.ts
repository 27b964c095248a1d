export { writeAddonConfig } from './addon';
export {
  type DeviceStatus,
  deviceStatus,
  type Freshness,
  freshness,
  trustedNow,
} from './status';
export {
  chooseMirrors,
  type MirrorChoice,
  type MirrorSource,
  noMirror,
  readRememberedMirrors,
} from './store/mirrors';
export { loadState, stateFiles, type TrustState, type VerifiedCheckpoint } from './store/state';
export {
  clearForkEvidence,
  type ForkEvidence,
  type MirrorResult,
  readForkEvidence,
  type SyncAttempt,
} from './store/status';
export { type IndexedRecord, SubjectIndex } from './store/subjects';
export { verdictFor } from './store/verdict';
export { supervisorFrom } from './supervisor';
export type { Applied } from './sync/apply';
export { type WatchOptions, watchSync } from './sync/schedule';
export { exportSnapshot } from './sync/snapshot-export';
export { importSnapshot } from './sync/snapshot-import';
export { type Repaired, type SyncOptions, type SyncReport, syncFromMirrors } from './sync/sync';
