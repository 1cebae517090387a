"""Pure metric functions: arrays and lists in, numbers out.

Nothing here touches the model, files or torch, so every metric can be checked
against hand-computed cases and reference implementations. Import the submodule
you need (``coca_bench.metrics.classification``); this package re-exports nothing
so that importing one metric family never drags in another's dependencies.
"""
