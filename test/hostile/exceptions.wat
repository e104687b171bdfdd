;; Exception handling is outside the whitelist.
(module
  (memory (export "memory") 1)
  (tag $oops)
  (func (export "run")
    (throw $oops)))
