;; Writes 5000 distinct keys in one call: over max_storage_writes (the host applies each key to the state tree).
(module
  (import "env" "storage_write" (func $storage_write (param i64 i64 i64) (result i32)))
  (memory (export "memory") 1)
  ;; key descriptor at 0: {ptr 64, len 4}; value descriptor at 16: {ptr 64, len 4}; the key (a counter) at 64
  (data (i32.const 0) "\40\00\00\00\00\00\00\00\04\00\00\00\00\00\00\00\40\00\00\00\00\00\00\00\04\00\00\00\00\00\00\00")
  (func (export "run") (local $i i32)
    (loop $l
      (i32.store (i32.const 64) (local.get $i))
      (drop (call $storage_write (i64.const 0) (i64.const 16) (i64.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 5000))))))
