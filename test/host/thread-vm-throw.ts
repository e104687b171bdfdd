/** A VM thread that takes its job, then throws an uncaught error (thread.test.ts). */
import { takeJob } from './thread-fake-vm.js';

await takeJob();
throw new Error('deliberate VM thread failure');
