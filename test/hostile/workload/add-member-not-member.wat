;; An executor that is not a member of the current context adds a member: refused when applied.
(module
  (import "env" "context_add_member" (func $context_add_member (param i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "\40\00\00\00\00\00\00\00\20\00\00\00\00\00\00\00")
  (data (i32.const 64) "\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22\22")
  (func (export "run") (call $context_add_member (i64.const 0))))
