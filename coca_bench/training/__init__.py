"""Training programs, apart from the evaluation modules: ``coca-bench train`` trains the demo checkpoints that ship
in the package (:mod:`.trainer`) on generated scenes (:mod:`.data`). Nothing in an evaluation imports this package,
so editing it never reruns a stored result."""
