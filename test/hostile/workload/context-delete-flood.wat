;; Queues 5000 context_delete actions (900k froze the host for 14 s when applied): over max_node_actions.
(module
  (import "env" "context_delete" (func $context_delete (param i64)))
  (memory (export "memory") 1)
  ;; descriptor at 0: {ptr 64, len 32}; the id (zeros) at 64
  (data (i32.const 0) "\40\00\00\00\00\00\00\00\20\00\00\00\00\00\00\00")
  (func (export "run") (local $i i32)
    (loop $l
      (call $context_delete (i64.const 0))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 5000))))))
