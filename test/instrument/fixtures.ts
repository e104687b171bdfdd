// WAT fixtures shared by the round-trip and semantics tests (no tests here).

/**
 * Exercises the allowed features in one module: loops, br_table, multi-value blocks and functions, block
 * parameters, bulk memory (memory.copy/fill/init, data.drop, table.init/copy, elem.drop), call_indirect
 * (including a table entry that is an imported function), a start function, mutable and exported globals,
 * sign extension, saturating truncation, floats, select, returns from nested blocks and dead code after
 * branches. Every export takes and returns numbers, so plain and instrumented runs can be compared.
 */
export const KITCHEN_SINK = `
(module
  (type $binop (func (param i32 i32) (result i32)))
  (type $pair (func (result i32 i64)))
  (type $take2 (func (param i32 i32) (result i32 i32)))
  (import "test" "twice" (func $twice (param i32) (result i32)))
  (memory (export "memory") 1 4)
  (table 8 funcref)
  (global $counter (mut i32) (i32.const 0))
  (global $started (export "started") (mut i32) (i32.const 0))
  (global $k i64 (i64.const 0x123456789))
  (global $half f64 (f64.const 0.5))
  (elem (i32.const 0) $add $sub $twice)
  (elem $later func $mul $add)
  (data (i32.const 16) "hello, world")
  (data $blob "0123456789abcdef")

  (func $add (type $binop) (i32.add (local.get 0) (local.get 1)))
  (func $sub (type $binop) (i32.sub (local.get 0) (local.get 1)))
  (func $mul (type $binop) (i32.mul (local.get 0) (local.get 1)))

  (func $start (global.set $started (i32.const 42)))
  (start $start)

  ;; sum of 0..n-1 with a counted loop
  (func (export "loop_sum") (param $n i32) (result i32) (local $i i32) (local $s i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        (local.set $s (i32.add (local.get $s) (local.get $i)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $s))

  ;; do-while shape with the branch at the bottom, and code after it
  (func (export "do_while") (param $n i32) (result i32) (local $acc i32)
    (loop $again
      (local.set $acc (i32.add (local.get $acc) (i32.mul (local.get $n) (i32.const 3))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $again (i32.gt_s (local.get $n) (i32.const 0)))
      (local.set $acc (i32.xor (local.get $acc) (i32.const 0x5a5a))))
    (local.get $acc))

  ;; br_table over 0..4 with a default, each arm leaving a different value
  (func (export "switch") (param $x i32) (result i32)
    (block $d (block $c (block $b (block $a
      (br_table $a $b $c $d (local.get $x)))
      (return (i32.const 100)))
      (return (i32.const 200)))
      (return (i32.const 300)))
    (i32.const 999))

  ;; multi-value: a block with params and two results, a function with two results
  (func $divmod (type $take2) (i32.div_u (local.get 0) (local.get 1)) (i32.rem_u (local.get 0) (local.get 1)))
  (func (export "multi") (param $a i32) (param $b i32) (result i32)
    (local $q i32) (local $r i32)
    (call $divmod (local.get $a) (local.get $b))
    (local.set $r) (local.set $q)
    (local.get $q) (local.get $r)
    (block (type $take2) (i32.add (i32.const 1)))
    (i32.add) (local.get $q) (i32.mul))
  (func $pair (type $pair) (i32.const 3) (i64.const 4))
  (func (export "pair_sum") (result i64) (local $b i64) (local $a i32)
    (call $pair) (local.set $b) (local.set $a)
    (i64.add (i64.extend_i32_u (local.get $a)) (local.get $b)))

  ;; if/else with a block parameter and a result
  (func (export "if_params") (param $x i32) (result i32)
    (local.get $x)
    (if (param i32) (result i32) (i32.and (local.get $x) (i32.const 1))
      (then (i32.mul (i32.const 3)) (i32.add (i32.const 1)))
      (else (i32.shr_u (i32.const 1)))))

  ;; collatz steps: nested ifs in a loop, merged and unmerged arms
  (func (export "collatz") (param $n i32) (result i32) (local $steps i32)
    (block $out
      (loop $step
        (br_if $out (i32.le_u (local.get $n) (i32.const 1)))
        (if (i32.and (local.get $n) (i32.const 1))
          (then (local.set $n (i32.add (i32.mul (local.get $n) (i32.const 3)) (i32.const 1))))
          (else (local.set $n (i32.shr_u (local.get $n) (i32.const 1)))))
        (local.set $steps (i32.add (local.get $steps) (i32.const 1)))
        (br $step)))
    (local.get $steps))

  ;; return from deep inside nested blocks, and a branch to the function label with a value
  (func (export "early") (param $x i32) (result i32)
    (block (block (block
      (if (i32.eqz (local.get $x)) (then (return (i32.const -1))))
      (br_if 2 (i32.gt_s (local.get $x) (i32.const 10)))
      (br 3 (i32.mul (local.get $x) (i32.const 2))))))
    (i32.const 77))

  ;; dead code after unconditional branches, with operations on the polymorphic stack
  (func (export "dead") (param $x i32) (result i32)
    (block $b (result i32)
      (br $b (local.get $x))
      (i32.add)
      (drop)
      (loop (br 0))
      (f32.add)
      (drop)
      (i32.const 1))
    (return)
    (unreachable)
    (f64.div)
    (drop))

  ;; bulk memory: fill, copy, init from a passive segment, drop it; returns a checksum of the region
  (func (export "bulk") (param $n i32) (result i32) (local $i i32) (local $s i32)
    (memory.fill (i32.const 256) (i32.const 0x41) (local.get $n))
    (memory.copy (i32.const 300) (i32.const 16) (i32.const 12))
    (memory.init $blob (i32.const 320) (i32.const 4) (i32.const 8))
    (data.drop $blob)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.const 128)))
      (local.set $s (i32.add (i32.mul (local.get $s) (i32.const 31)) (i32.load8_u offset=256 (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (local.get $s))

  ;; table.init / table.copy / elem.drop, then call_indirect through the entries (one is the imported $twice)
  (func (export "tables") (param $x i32) (result i32)
    (table.init $later (i32.const 4) (i32.const 0) (i32.const 2))
    (elem.drop $later)
    (table.copy (i32.const 6) (i32.const 0) (i32.const 2))
    (i32.add
      (i32.add
        (call_indirect (type $binop) (local.get $x) (i32.const 5) (i32.const 4))
        (call_indirect (type $binop) (local.get $x) (i32.const 5) (i32.const 7)))
      (i32.add
        (call_indirect (param i32) (result i32) (local.get $x) (i32.const 2))
        (call_indirect (type $binop) (local.get $x) (i32.const 1) (i32.const 6)))))

  ;; globals, sign extension, saturating truncation, select, memory.size/grow
  (func (export "misc") (param $x i32) (result i64)
    (global.set $counter (i32.add (global.get $counter) (local.get $x)))
    (i64.add
      (i64.add
        (i64.extend8_s (i64.extend_i32_u (global.get $counter)))
        (i64.trunc_sat_f64_s (f64.mul (f64.convert_i32_s (local.get $x)) (global.get $half))))
      (i64.add
        (select (global.get $k) (i64.const 5) (i32.gt_s (local.get $x) (i32.const 3)))
        (i64.extend_i32_s (i32.add (memory.grow (i32.const 1)) (memory.size))))))

  ;; float arithmetic (results are not NaN, so canonicalisation must not change them)
  (func (export "floats") (param $x i32) (result f64)
    (f64.add
      (f64.sqrt (f64.convert_i32_u (local.get $x)))
      (f64.promote_f32 (f32.div (f32.convert_i32_s (local.get $x)) (f32.const 3)))))

  ;; host call in a loop: the gas global and the local copy must stay in step
  (func (export "host_loop") (param $n i32) (result i32) (local $s i32)
    (block $done (loop $l
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $s (i32.add (local.get $s) (call $twice (local.get $n))))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $l)))
    (local.get $s))

  ;; recursion through a multi-value function
  (func $sumdown (param $n i32) (result i32 i32)
    (if (result i32 i32) (i32.le_s (local.get $n) (i32.const 0))
      (then (i32.const 0) (i32.const 0))
      (else
        (call $sumdown (i32.sub (local.get $n) (i32.const 1)))
        (i32.add (i32.const 1))
        (local.set $n (i32.add (local.get $n)))
        (local.get $n)
        (i32.const 0) (drop)
        (i32.const 0) (drop))))
  (func (export "recurse") (param $n i32) (result i32)
    (call $sumdown (local.get $n))
    (i32.mul (i32.const 1000))
    (i32.add))
)`;

/** Calls (export name, arguments) compared between plain and instrumented runs of KITCHEN_SINK. */
export const KITCHEN_CALLS: [string, number[]][] = [
  ['loop_sum', [0]], ['loop_sum', [1]], ['loop_sum', [1000]],
  ['do_while', [1]], ['do_while', [17]],
  ['switch', [0]], ['switch', [1]], ['switch', [2]], ['switch', [3]], ['switch', [4]], ['switch', [-1]],
  ['multi', [17, 5]], ['multi', [100, 7]],
  ['pair_sum', []],
  ['if_params', [6]], ['if_params', [7]],
  ['collatz', [27]], ['collatz', [1]],
  ['early', [0]], ['early', [5]], ['early', [11]],
  ['dead', [9]],
  ['bulk', [64]], ['bulk', [128]],
  ['tables', [10]],
  ['misc', [2]], ['misc', [9]],
  ['floats', [10]], ['floats', [12345]],
  ['host_loop', [10]],
  ['recurse', [50]],
];

export const KITCHEN_IMPORTS = { test: { twice: (x: number): number => x * 2 } };
