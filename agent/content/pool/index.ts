export {
  type ChunkedDigest,
  type Digest,
  HashPool,
  type OpenFile,
  type PoolOptions,
  plannedPool,
  type Source,
  startHashWorker,
} from './pool';
