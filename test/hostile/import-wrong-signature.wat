;; A catalogue function imported with the wrong signature (value_return takes one i64).
(module
  (import "env" "value_return" (func $value_return (param i32)))
  (memory (export "memory") 1)
  (func (export "run")
    (call $value_return (i32.const 0))))
