;; The start function never returns: instantiation itself must run out of gas.
(module
  (memory (export "memory") 1)
  (func $start
    (loop $forever
      (br $forever)))
  (start $start)
  (func (export "run")))
