;; Write overlay: 1 MiB values under ever new keys. The overlay keeps every value until the result is sent,
;; so it is bounded by max_execution_memory: MemoryLimitExceeded at the write that would pass it.
(module
  (import "env" "storage_write" (func $write (param i64 i64 i64) (result i32)))
  (memory (export "memory") 32)
  ;; the key is the 8-byte counter at 0: descriptor {0, 8}
  (data (i32.const 16) "\00\00\00\00\00\00\00\00\08\00\00\00\00\00\00\00")
  ;; value descriptor {65536, 1048576}
  (data (i32.const 32) "\00\00\01\00\00\00\00\00\00\00\10\00\00\00\00\00")
  (func (export "run")
    (loop $l
      (drop (call $write (i64.const 16) (i64.const 32) (i64.const 1)))
      (i64.store (i32.const 0) (i64.add (i64.load (i32.const 0)) (i64.const 1)))
      (br $l))))
