;; An empty infinite loop: must end by gas, at the same point every time.
(module
  (memory (export "memory") 1)
  (func (export "run")
    (loop $forever
      (br $forever))))
