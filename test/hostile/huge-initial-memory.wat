;; 4 GiB of initial memory: rejected before compilation (V8 would try to allocate it).
(module
  (memory (export "memory") 65536)
  (func (export "run")))
