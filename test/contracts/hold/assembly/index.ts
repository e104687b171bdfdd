// hold: methods that stay inside an execution, for tests that kill or time out a VM mid-call.
import { storageWrite, returnOk } from "../../../../sdk/assemblyscript/assembly/index";

/** Writes "hold:written" (only into the VM's overlay), then spins forever: a kill must lose the write. */
export function write_then_loop(): void {
  storageWrite<string, string>("hold:written", "yes");
  let i: u32 = 0;
  while (true) {
    store<u32>(0, i++);
  }
}

/** Writes "hold:written" and returns: the contrast case. */
export function write(): void {
  storageWrite<string, string>("hold:written", "yes");
  returnOk("null");
}
