/** A VM thread that takes its job, then calls process.exit(9): in a worker that must end only the thread (thread.test.ts). */
import { takeJob } from './thread-fake-vm.js';

await takeJob();
process.exit(9);
