;; Replacing is not accumulating: the same 1 MiB value written 20 times to one key and read 20 times into one
;; register stays at about 2 MiB held, under a 4 MiB budget, and the call returns.
(module
  (import "env" "storage_write" (func $write (param i64 i64 i64) (result i32)))
  (import "env" "storage_read" (func $read (param i64 i64) (result i32)))
  (memory (export "memory") 32)
  (data (i32.const 0) "k")
  ;; key descriptor {0, 1}
  (data (i32.const 16) "\00\00\00\00\00\00\00\00\01\00\00\00\00\00\00\00")
  ;; value descriptor {65536, 1048576}
  (data (i32.const 32) "\00\00\01\00\00\00\00\00\00\00\10\00\00\00\00\00")
  (func (export "run") (local $n i32)
    (local.set $n (i32.const 20))
    (loop $l
      ;; the previous value goes to register 5, replacing the one before
      (drop (call $write (i64.const 16) (i64.const 32) (i64.const 5)))
      (drop (call $read (i64.const 16) (i64.const 5)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))
