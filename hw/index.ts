export { type Arch, type CpuInfo, parseCpuInfo } from './cpuinfo';
export { type HashPlan, planChecking, planHashing } from './plan';
export { type HardwareProfile, type ProfileOptions, readProfile } from './profile';
export {
  decodeRevision,
  decodeThrottled,
  type RaspberryPiRevision,
  readThrottling,
  type ThrottleCondition,
  type Throttling,
} from './raspberrypi';
export { parseMountInfo, readStorage, type Storage, type StorageClass } from './storage';
