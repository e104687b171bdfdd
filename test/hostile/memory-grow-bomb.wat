;; Grows memory forever. The maximum is clamped to the policy, so growth fails deterministically, and every
;; attempt is charged per requested page: the loop ends by gas. grow_past_limit shows the clamp: a grow beyond
;; max_memory_pages returns -1 (returned as 4 little-endian bytes).
(module
  (import "env" "value_return" (func $value_return (param i64)))
  (memory (export "memory") 1)
  (func (export "run")
    (loop $again
      (drop (memory.grow (i32.const 16)))
      (br $again)))
  (func (export "grow_past_limit")
    (i32.store (i32.const 64) (memory.grow (i32.const 256)))
    (i64.store (i32.const 0) (i64.const 0))
    (i64.store (i32.const 8) (i64.const 64))
    (i64.store (i32.const 16) (i64.const 4))
    (call $value_return (i64.const 0))))
