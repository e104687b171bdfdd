;; Registers: one 1 MiB value written once, then read into register after register. Each register counts its
;; full length against max_execution_memory, so the loop ends with MemoryLimitExceeded, not an OOM kill.
(module
  (import "env" "storage_write" (func $write (param i64 i64 i64) (result i32)))
  (import "env" "storage_read" (func $read (param i64 i64) (result i32)))
  (memory (export "memory") 32)
  (data (i32.const 0) "k")
  ;; key descriptor {0, 1}
  (data (i32.const 16) "\00\00\00\00\00\00\00\00\01\00\00\00\00\00\00\00")
  ;; value descriptor {65536, 1048576}
  (data (i32.const 32) "\00\00\01\00\00\00\00\00\00\00\10\00\00\00\00\00")
  (func (export "run") (local $reg i64)
    (drop (call $write (i64.const 16) (i64.const 32) (i64.const 0)))
    (loop $l
      (drop (call $read (i64.const 16) (local.get $reg)))
      (local.set $reg (i64.add (local.get $reg) (i64.const 1)))
      (br $l))))
