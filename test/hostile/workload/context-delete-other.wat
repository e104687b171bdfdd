;; Deletes a context that is neither the current one nor created in it: refused when applied.
(module
  (import "env" "context_delete" (func $context_delete (param i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\40\00\00\00\00\00\00\00\20\00\00\00\00\00\00\00")
  (data (i32.const 64) "\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11\11")
  (func (export "run") (call $context_delete (i64.const 0))))
