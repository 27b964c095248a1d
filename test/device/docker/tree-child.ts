/**
 * Runs the tree check on `root` (`driver` storage) for the layers `diffIds…` and prints its
 * result or error as JSON, for tree.test.ts to run as a user other than root.
 */
import { type StorageDriver, treeCheck } from '../../../agent/device/docker/tree';

const [root = '', driver = 'vfs', ...diffIds] = process.argv.slice(2);
treeCheck({ root, driver: driver as StorageDriver }, diffIds).then(
  (result) => console.log(JSON.stringify({ result })),
  (error: { code?: string; message: string }) =>
    console.log(JSON.stringify({ error: { code: error.code, message: error.message } })),
);
