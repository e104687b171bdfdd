;; An import that is not in the host-function catalogue.
(module
  (import "env" "open_socket" (func $open_socket (param i64 i64) (result i32)))
  (memory (export "memory") 1)
  (func (export "run")
    (drop (call $open_socket (i64.const 0) (i64.const 0)))))
