;; Pending effects: context_create with 1 MiB of init args, again and again. Queued node actions leave with
;; the result, so they count against max_execution_memory: MemoryLimitExceeded, nothing applied.
(module
  (import "env" "context_create" (func $create (param i64 i64 i64 i64)))
  (memory (export "memory") 32)
  (data (i32.const 0) "p")
  ;; protocol descriptor {0, 1}
  (data (i32.const 16) "\00\00\00\00\00\00\00\00\01\00\00\00\00\00\00\00")
  ;; application id descriptor {256, 32}
  (data (i32.const 32) "\00\01\00\00\00\00\00\00\20\00\00\00\00\00\00\00")
  ;; init args descriptor {65536, 1048576}
  (data (i32.const 48) "\00\00\01\00\00\00\00\00\00\00\10\00\00\00\00\00")
  (func (export "run")
    (loop $l
      (call $create (i64.const 16) (i64.const 32) (i64.const 48) (i64.const 0))
      (br $l))))
