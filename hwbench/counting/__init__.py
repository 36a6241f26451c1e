"""The machinery behind `hwbench.count` (the public API): result types, MAC formulas, shape-only
meta kernels, the module/operator tracer, the meta and fvcore counters and the on-disk cache."""
