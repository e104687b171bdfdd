;; SIMD is outside the whitelist.
(module
  (memory (export "memory") 1)
  (func (export "run")
    (v128.store (i32.const 0) (i32x4.add (v128.const i32x4 1 2 3 4) (v128.const i32x4 5 6 7 8)))))
