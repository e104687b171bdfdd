;; Two functions calling each other directly, and through the table.
(module
  (type $void (func))
  (memory (export "memory") 1)
  (table 2 funcref)
  (elem (i32.const 0) $ping_indirect $pong_indirect)
  (func $ping (local f64 f64 f64) (call $pong))
  (func $pong (local i32 i32) (call $ping))
  (func $ping_indirect (call_indirect (type $void) (i32.const 1)))
  (func $pong_indirect (call_indirect (type $void) (i32.const 0)))
  (func (export "run") (call $ping))
  (func (export "run_indirect") (call $ping_indirect)))
