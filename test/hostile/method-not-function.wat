;; The method name is exported, but as a global, not as a function.
(module
  (memory (export "memory") 1)
  (global (export "run") i32 (i32.const 7)))
