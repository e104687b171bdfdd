;; Imported memories (and tables, globals) are refused: the VM owns every resource the guest uses.
(module
  (import "env" "memory" (memory 1))
  (func (export "run")))
