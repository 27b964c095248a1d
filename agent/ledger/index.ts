export { type AddResult, addEnvelopes } from './add';
export { type CosignResult, cosignLog } from './cosign';
export { type AppendResult, appendEntries, readEntries } from './entries';
export {
  initLog,
  type LogConfig,
  layout,
  publicDir,
  readCheckpoint,
  readConfig,
  readState,
  requireLogKey,
} from './logdir';
export { type LogProof, proveConsistency, proveInclusion } from './proof';
export { type PublishResult, publishLog } from './publish';
export { publishedReader, readTile } from './published';
export {
  newestPublishedRoot,
  type PublishedRoot,
  publishedRootVersions,
  publishRoot,
  requireRootForLog,
} from './roots';
export { type LogServer, serveLog } from './serve';
export { exportLogSnapshot } from './snapshot';
