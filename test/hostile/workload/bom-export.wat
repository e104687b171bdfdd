;; Exports "\u{FEFF}run": a decoder that drops a leading BOM would make it callable as "run".
(module
  (memory (export "memory") 1)
  (func (export "\ef\bb\bfrun")))
