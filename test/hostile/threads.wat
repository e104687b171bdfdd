;; Shared memory and atomics (threads) are outside the whitelist.
(module
  (memory (export "memory") 1 1 shared)
  (func (export "run")
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))))
