;; NaN-producing float code whose bits are stored and returned. x64 gives 0xffc00000 for 0/0 and propagates
;; payloads; ARM64 gives 0x7fc00000. After canonicalisation every NaN result is 0x7fc00000 (f32) or
;; 0x7ff8000000000000 (f64) on every machine. Returns 48 bytes: 6 f32 results then 3 f64 results.
(module
  (import "env" "value_return" (func $value_return (param i64)))
  (memory (export "memory") 1)
  (func (export "run")
    ;; f32: 0/0, sqrt(-1), sNaN + 1, 1 + negative NaN with payload, min(NaN, 1), demote(f64 NaN with payload)
    (f32.store (i32.const 100) (f32.div (f32.const 0) (f32.const 0)))
    (f32.store (i32.const 104) (f32.sqrt (f32.const -1)))
    (f32.store (i32.const 108) (f32.add (f32.reinterpret_i32 (i32.const 0x7fa00001)) (f32.const 1)))
    (f32.store (i32.const 112) (f32.add (f32.const 1) (f32.reinterpret_i32 (i32.const 0xffc00123))))
    (f32.store (i32.const 116) (f32.min (f32.const nan) (f32.const 1)))
    (f32.store (i32.const 120) (f32.demote_f64 (f64.reinterpret_i64 (i64.const 0x7ff4000000000001))))
    ;; f64: 0/0, promote(sNaN), nearest(sNaN)
    (f64.store (i32.const 124) (f64.div (f64.const 0) (f64.const 0)))
    (f64.store (i32.const 132) (f64.promote_f32 (f32.reinterpret_i32 (i32.const 0x7fa00001))))
    (f64.store (i32.const 140) (f64.nearest (f64.reinterpret_i64 (i64.const 0x7ff0000000000001))))
    (i64.store (i32.const 0) (i64.const 0))
    (i64.store (i32.const 8) (i64.const 100))
    (i64.store (i32.const 16) (i64.const 48))
    (call $value_return (i64.const 0))))
