// Recursive Fibonacci: call-heavy, so it measures the per-call cost of gas and stack accounting.
export function fib(n: i32): i32 {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}
