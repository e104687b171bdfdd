/** A VM thread that takes its job, then fills its V8 heap until the thread's resource limit ends it (thread.test.ts). */
import { takeJob } from './thread-fake-vm.js';

await takeJob();
const hoard: string[][] = [];
for (let i = 0; ; i++) hoard.push(Array.from({ length: 1024 }, (_, j) => `${i}:${j}`));
