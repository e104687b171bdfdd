/** A VM thread that tries to enter the VM sandbox: it must refuse (it would act on the host process). thread.test.ts. */
import { enterSandbox } from '../../src/vm/sandbox.js';

try {
  enterSandbox({ HOSTLINK_SANDBOX: 'best-effort' });
  process.stderr.write('entered');
  process.exit(3);
} catch (e) {
  process.stderr.write((e as Error).message);
  process.exit(0);
}
