export {
  type ChunkedDigest,
  type Digest,
  HashPool,
  type PoolOptions,
  plannedPool,
  type Source,
  startHashWorker,
} from './pool';
