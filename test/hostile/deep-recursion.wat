;; Unbounded self-recursion with a large frame: the stack-height counter stops it, never V8's native stack.
(module
  (memory (export "memory") 1)
  (func $down (param $n i64) (local $a i64) (local $b i64) (local $c i64) (local $d i64)
    (call $down (i64.add (local.get $n) (i64.const 1))))
  (func (export "run")
    (call $down (i64.const 0))))
