"""Linear probe on frozen features: L-BFGS logistic regression with its regularisation chosen on a validation split.

This follows the CLIP paper's protocol (App. A.3), not CLIP_benchmark's: scikit-learn ``LogisticRegression``
(L-BFGS, multinomial for more than two classes, ``max_iter`` 1000), the inverse regularisation C swept over a log
grid on a validation split, then a final fit on train + validation with the chosen C. It runs on a CPU (CLIP_benchmark
asserts CUDA and trains an ``nn.Linear`` with AdamW for a fixed number of epochs instead).

Deviations, both for cost: the default grid is 13 points, one per decade over [1e-6, 1e6] (CLIP: the same range
refined by a binary search down to 8 steps per decade, 96 points); and when there is no validation split a seeded,
stratified ``val_fraction`` of train is held out for the sweep (as CLIP does for datasets without one). Features are
used as given: L2-normalise them first if that is the protocol being reproduced.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_C_GRID: tuple[float, ...] = tuple(float(c) for c in np.logspace(-6, 6, 13))


@dataclass(frozen=True)
class LinearProbe:
    """A fitted probe and how its C was chosen (``val_accuracy[i]`` is the validation top-1 at ``c_grid[i]``)."""

    classifier: Any  # sklearn LogisticRegression fitted on train + validation with ``c``
    num_classes: int
    c: float
    c_grid: tuple[float, ...]  # ascending
    val_accuracy: tuple[float, ...]  # empty when the grid had a single C (no sweep)
    train_size: int
    val_size: int
    converged: bool  # the final fit stopped before max_iter

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``[N, num_classes]`` scores whose softmax is :meth:`predict_proba`; -inf for classes absent from training."""
        scores = self.classifier.decision_function(_features(x, "x"))
        if scores.ndim == 1:  # binary: sklearn returns the log-odds of classes_[1]
            scores = np.stack([np.zeros_like(scores), scores], axis=1)
        out = np.full((scores.shape[0], self.num_classes), -np.inf)
        out[:, self.classifier.classes_] = scores
        return out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        probs = self.classifier.predict_proba(_features(x, "x"))
        out = np.zeros((probs.shape[0], self.num_classes))
        out[:, self.classifier.classes_] = probs
        return out


def _features(x: Any, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty [samples, features] array; got shape {x.shape}.")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinity; the encoder produced invalid features.")
    return x


def _labels(y: Any, n: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{name} must have one label per sample ({n}); got shape {y.shape}.")
    if not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
        raise ValueError(f"{name} must hold non-negative integer class indices; got dtype {y.dtype}.")
    return y.astype(np.int64)


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, val) index split holding out ``round(fraction * n_c)`` of each class, always leaving one to train.

    Per class, so that a rare class is neither missing from the sweep's training half nor over-represented in val.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"val_fraction must lie in (0, 1); got {fraction}.")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    val = [
        rng.permutation(idx)[: min(round(fraction * idx.size), idx.size - 1)]
        for idx in (np.flatnonzero(labels == c) for c in np.unique(labels))
    ]
    val_idx = np.sort(np.concatenate(val)).astype(np.int64)
    return np.setdiff1d(np.arange(labels.size), val_idx), val_idx


def few_shot_indices(labels: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """Sorted indices of ``shots`` seeded examples of every class present in ``labels``.

    Each class draws from its own generator (seeded by ``seed`` and the class), so a class's picks do not change
    when other classes are added or removed (a smaller ``--limit``, a class subset).
    """
    if shots < 1:
        raise ValueError(f"shots must be at least 1; got {shots}.")
    labels = _labels(labels, np.asarray(labels).size, "labels")
    picked = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if idx.size < shots:
            raise ValueError(f"Class {c} has {idx.size} examples; {shots}-shot needs {shots} of every class.")
        picked.append(np.random.default_rng([seed, int(c)]).choice(idx, size=shots, replace=False))
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def _fit(x: np.ndarray, y: np.ndarray, c: float, max_iter: int, seed: int) -> tuple[Any, bool]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    classifier = LogisticRegression(C=c, solver="lbfgs", max_iter=max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # recorded instead: weakly regularised fits often hit it
        classifier.fit(x, y)
    return classifier, bool(np.max(classifier.n_iter_) < max_iter)


def fit_linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    *,
    val_x: np.ndarray | None = None,
    val_y: np.ndarray | None = None,
    c_grid: tuple[float, ...] | np.ndarray = DEFAULT_C_GRID,
    val_fraction: float = 0.2,
    seed: int = 0,
    max_iter: int = 1000,
    num_classes: int | None = None,
) -> LinearProbe:
    """Sweep C on the validation split, keep the best top-1 (ties: the smaller C, i.e. stronger regularisation,
    the safer choice on a small split), then refit on train + validation.

    Without ``val_x``/``val_y`` a stratified ``val_fraction`` of train is held out (seeded by ``seed``). A single-value
    ``c_grid`` skips the sweep. ``num_classes`` (default: largest label + 1) sets the width of the logits.
    Deterministic for a seed.
    """
    x = _features(train_x, "train_x")
    y = _labels(train_y, x.shape[0], "train_y")
    grid = tuple(sorted(float(c) for c in np.atleast_1d(np.asarray(c_grid, dtype=float))))
    if not grid or not all(np.isfinite(c) and c > 0 for c in grid):
        raise ValueError(f"c_grid must hold positive, finite values; got {c_grid}.")
    if (val_x is None) != (val_y is None):
        raise ValueError("Pass both val_x and val_y, or neither.")
    if val_x is not None:
        fit_x, fit_y = x, y
        held_x = _features(val_x, "val_x")
        held_y = _labels(val_y, held_x.shape[0], "val_y")
        if held_x.shape[1] != x.shape[1]:
            raise ValueError(f"val_x must have {x.shape[1]} features like train_x; got {held_x.shape[1]}.")
    elif len(grid) > 1:
        train_idx, val_idx = stratified_holdout(y, val_fraction, seed)
        if val_idx.size == 0:
            raise ValueError("Too few samples per class to hold out a validation split; pass val_x/val_y or one C.")
        fit_x, fit_y, held_x, held_y = x[train_idx], y[train_idx], x[val_idx], y[val_idx]
    else:
        fit_x, fit_y, held_x, held_y = x, y, x[:0], y[:0]
    if np.unique(fit_y).size < 2:
        raise ValueError("The training split has a single class; a classifier needs at least two.")

    val_accuracy: list[float] = []
    if len(grid) > 1:
        for c in grid:
            classifier, _ = _fit(fit_x, fit_y, c, max_iter, seed)
            val_accuracy.append(float(np.mean(classifier.predict(held_x) == held_y)))
    chosen = grid[int(np.argmax(val_accuracy))] if val_accuracy else grid[0]  # argmax: first (smallest C) of ties

    all_x, all_y = np.concatenate([fit_x, held_x]), np.concatenate([fit_y, held_y])
    classifier, converged = _fit(all_x, all_y, chosen, max_iter, seed)
    width = int(all_y.max()) + 1 if num_classes is None else num_classes
    if width <= all_y.max():
        raise ValueError(f"num_classes ({num_classes}) must exceed the largest label ({all_y.max()}).")
    return LinearProbe(
        classifier=classifier,
        num_classes=width,
        c=chosen,
        c_grid=grid,
        val_accuracy=tuple(val_accuracy),
        train_size=int(fit_y.size),
        val_size=int(held_y.size),
        converged=converged,
    )
