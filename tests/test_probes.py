import numpy as np
import pytest

from coca_bench.probes.linear import DEFAULT_C_GRID, few_shot_indices, fit_linear_probe, stratified_holdout


def _clusters(counts, dim=8, spread=3.0, seed=0):
    """Gaussian clusters, one per class, with ``counts[c]`` samples of class c."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((len(counts), dim)) * spread
    x = np.concatenate([centers[c] + rng.standard_normal((n, dim)) for c, n in enumerate(counts)])
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    return x, y


# --- linear probe ---------------------------------------------------------------------------------------------------
def test_default_grid_is_one_point_per_decade_over_clips_range():
    assert len(DEFAULT_C_GRID) == 13 and DEFAULT_C_GRID[0] == pytest.approx(1e-6)
    assert DEFAULT_C_GRID[-1] == pytest.approx(1e6)
    assert np.allclose(np.diff(np.log10(DEFAULT_C_GRID)), 1.0)


def test_picks_the_smallest_c_that_stops_underfitting():
    # 90/10 imbalanced, separable classes. Under strong regularisation (tiny C) the weights vanish and the
    # intercept predicts the majority class: validation top-1 is exactly the majority share (18 of 20). Weaker
    # regularisation separates the classes perfectly; the smallest such C must win the tie.
    x, y = _clusters([90, 10])
    probe = fit_linear_probe(x, y)
    acc = np.array(probe.val_accuracy)
    assert probe.val_size == 20 and acc[0] == pytest.approx(18 / 20)
    assert acc.max() == 1.0
    assert probe.c == probe.c_grid[int(np.flatnonzero(acc == 1.0)[0])]
    assert probe.c > probe.c_grid[0]


def test_pure_noise_picks_the_strongest_regularisation():
    # Labels independent of 60-dimensional features: weak regularisation fits the noise and loses to
    # always predicting the majority class (15 of 20 in the validation split).
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((100, 60)), (rng.random(100) < 0.3).astype(int)
    probe = fit_linear_probe(x, y)
    assert probe.c == 1e-6 and probe.val_accuracy[0] == pytest.approx(0.75)
    assert min(probe.val_accuracy) < 0.6


def test_ties_go_to_the_smaller_c_whatever_the_grid_order():
    x, y = _clusters([30, 30, 30])
    probe = fit_linear_probe(x, y, c_grid=[100.0, 1.0, 10.0])
    assert probe.c_grid == (1.0, 10.0, 100.0)
    assert probe.val_accuracy == (1.0, 1.0, 1.0) and probe.c == 1.0


def test_final_fit_uses_train_plus_validation():
    from sklearn.linear_model import LogisticRegression

    x, y = _clusters([20, 20, 20], spread=1.0)
    vx, vy = _clusters([10, 10, 10], spread=1.0, seed=5)
    probe = fit_linear_probe(x, y, val_x=vx, val_y=vy, c_grid=[0.01, 1.0])
    assert (probe.train_size, probe.val_size) == (60, 30)
    both = LogisticRegression(C=probe.c, max_iter=1000).fit(np.concatenate([x, vx]), np.concatenate([y, vy]))
    train_only = LogisticRegression(C=probe.c, max_iter=1000).fit(x, y)
    np.testing.assert_allclose(probe.classifier.coef_, both.coef_)
    assert not np.allclose(probe.classifier.coef_, train_only.coef_)


def test_held_out_split_is_stratified_seeded_and_keeps_a_training_example_per_class():
    y = np.array([0] * 10 + [1] * 5 + [2] * 1)
    train, val = stratified_holdout(y, 0.2, seed=0)
    assert np.bincount(y[val], minlength=3).tolist() == [2, 1, 0]
    assert sorted(np.concatenate([train, val]).tolist()) == list(range(16))
    assert np.array_equal(val, stratified_holdout(y, 0.2, seed=0)[1])
    assert not np.array_equal(val, stratified_holdout(y, 0.2, seed=1)[1])


def test_probe_is_deterministic_for_a_seed():
    x, y = _clusters([25, 25, 25], spread=0.7)
    grid = np.logspace(-3, 1, 5)
    a = fit_linear_probe(x, y, c_grid=grid, seed=3)
    b = fit_linear_probe(x, y, c_grid=grid, seed=3)
    assert a.val_accuracy == b.val_accuracy and a.c == b.c
    np.testing.assert_array_equal(a.logits(x), b.logits(x))
    assert fit_linear_probe(x, y, c_grid=grid, seed=4).val_accuracy != a.val_accuracy  # another hold-out split


def test_logits_cover_every_class_and_match_probabilities():
    x, y = _clusters([15, 0, 15, 15], spread=1.0)  # class 1 never seen in training
    probe = fit_linear_probe(x, y, c_grid=[1.0], num_classes=5)
    logits = probe.logits(x)
    assert logits.shape == (45, 5) and np.isneginf(logits[:, [1, 4]]).all()
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(shifted / shifted.sum(axis=1, keepdims=True), probe.predict_proba(x), atol=1e-10)
    assert (logits.argmax(axis=1) == y).mean() > 0.9


def test_binary_logits_softmax_to_the_probabilities():
    x, y = _clusters([20, 20], spread=0.5)
    probe = fit_linear_probe(x, y, c_grid=[1.0])
    logits = probe.logits(x)
    assert logits.shape == (40, 2)
    np.testing.assert_allclose(1 / (1 + np.exp(logits[:, 0] - logits[:, 1])), probe.predict_proba(x)[:, 1])


def test_linear_probe_rejects_bad_inputs():
    x, y = _clusters([5, 5])
    with pytest.raises(ValueError, match="one label per sample"):
        fit_linear_probe(x, y[:-1])
    with pytest.raises(ValueError, match="single class"):
        fit_linear_probe(x[:5], y[:5], c_grid=[1.0])
    with pytest.raises(ValueError, match="positive, finite"):
        fit_linear_probe(x, y, c_grid=[0.0, 1.0])
    with pytest.raises(ValueError, match="both val_x and val_y"):
        fit_linear_probe(x, y, val_x=x)
    with pytest.raises(ValueError, match="Too few samples"):
        fit_linear_probe(x[[0, 5]], y[[0, 5]])
    with pytest.raises(ValueError, match="val_fraction"):
        fit_linear_probe(x, y, val_fraction=1.0)
    with pytest.raises(ValueError, match="NaN"):
        fit_linear_probe(np.full_like(x, np.nan), y)


# --- few-shot selection ---------------------------------------------------------------------------------------------
def test_few_shot_picks_n_per_class_deterministically():
    labels = np.repeat(np.arange(4), [10, 7, 3, 12])
    picked = few_shot_indices(labels, shots=3, seed=0)
    assert np.bincount(labels[picked]).tolist() == [3, 3, 3, 3]
    assert picked.tolist() == sorted(set(picked.tolist()))
    assert np.array_equal(picked, few_shot_indices(labels, shots=3, seed=0))
    assert not np.array_equal(picked, few_shot_indices(labels, shots=3, seed=1))


def test_few_shot_picks_of_a_class_do_not_depend_on_other_classes():
    labels = np.repeat(np.arange(4), 10)
    all_classes = few_shot_indices(labels, shots=2, seed=7)
    without_class_0 = few_shot_indices(labels[10:], shots=2, seed=7) + 10
    assert set(all_classes[labels[all_classes] != 0]) == set(without_class_0)


def test_few_shot_rejects_too_few_examples():
    with pytest.raises(ValueError, match="Class 1 has 2 examples"):
        few_shot_indices(np.array([0, 0, 0, 1, 1]), shots=3, seed=0)
    with pytest.raises(ValueError, match="at least 1"):
        few_shot_indices(np.array([0, 1]), shots=0, seed=0)


# --- attentive probe ------------------------------------------------------------------------------------------------
def _marked_token_task(n, seed, classes=4, tokens=8, dim=16):
    """Every sample holds all class prototypes among noise tokens; only the one flagged in the last channel tells
    the class. The token mean is the same for every class, so a mean-pool probe is at chance, while a single
    attention query can find the flagged token."""
    rng = np.random.default_rng(seed)
    prototypes = np.random.default_rng(123).standard_normal((classes, dim - 1)) * 2
    x = rng.standard_normal((n, tokens, dim)) * 0.5
    x[..., -1] = 0
    y = rng.integers(0, classes, n)
    for i in range(n):
        positions = rng.permutation(tokens)[:classes]
        x[i, positions, :-1] += prototypes
        x[i, positions[y[i]], -1] = 3.0
    return x.astype(np.float32), y


def _attentive_config(**overrides):
    from coca_bench.probes.attentive import AttentiveProbeConfig

    settings = {"epochs": 20, "lr": 5e-3, "batch_size": 32, "num_heads": 2, "label_smoothing": 0.1}
    return AttentiveProbeConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def marked_tokens():
    return _marked_token_task(512, seed=0), _marked_token_task(256, seed=1)


def test_attentive_probe_finds_the_one_token_a_mean_pool_dilutes(marked_tokens):
    from sklearn.linear_model import LogisticRegression

    from coca_bench.probes.attentive import train_attentive_probe

    (x, y), (test_x, test_y) = marked_tokens
    probe = train_attentive_probe(x, y, 4, _attentive_config())
    assert (probe.logits(test_x).argmax(axis=1) == test_y).mean() > 0.9
    assert probe.train_loss[-1] < probe.train_loss[0]
    mean_pool = LogisticRegression(max_iter=1000).fit(x.mean(axis=1), y)
    assert mean_pool.score(test_x.mean(axis=1), test_y) < 0.4  # the task really needs attention


def test_attentive_probe_is_deterministic_and_leaves_the_global_rng_alone(marked_tokens):
    import torch

    from coca_bench.probes.attentive import train_attentive_probe

    (x, y), (test_x, _) = marked_tokens
    state = torch.get_rng_state()
    a = train_attentive_probe(x[:128], y[:128], 4, _attentive_config(epochs=3, seed=1)).logits(test_x)
    assert torch.equal(torch.get_rng_state(), state)
    b = train_attentive_probe(x[:128], y[:128], 4, _attentive_config(epochs=3, seed=1)).logits(test_x)
    c = train_attentive_probe(x[:128], y[:128], 4, _attentive_config(epochs=3, seed=2)).logits(test_x)
    assert a.dtype == np.float32 and a.shape == (256, 4)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_attentive_probe_shuffles_with_a_generator_seeded_by_the_config(marked_tokens, monkeypatch):
    import torch

    from coca_bench.probes import attentive

    seeds = []
    real_randperm = torch.randperm

    def recording_randperm(n, *, generator):
        seeds.append(generator.initial_seed())
        return real_randperm(n, generator=generator)

    monkeypatch.setattr(attentive.torch, "randperm", recording_randperm)
    (x, y), _ = marked_tokens
    attentive.train_attentive_probe(x[:16], y[:16], 4, _attentive_config(epochs=2, seed=5))
    assert seeds == [5, 5]


def test_attentive_probe_takes_fp16_numpy_or_torch_storage(marked_tokens):
    import torch

    from coca_bench.probes.attentive import train_attentive_probe

    (x, y), (test_x, _) = marked_tokens
    half = x[:96].astype(np.float16)
    from_numpy = train_attentive_probe(half, y[:96], 4, _attentive_config(epochs=2))
    from_torch = train_attentive_probe(torch.from_numpy(half), torch.from_numpy(y[:96]), 4, _attentive_config(epochs=2))
    np.testing.assert_array_equal(from_numpy.logits(test_x[:10]), from_torch.logits(torch.from_numpy(test_x[:10])))
    # Batching changes float rounding only.
    np.testing.assert_allclose(from_numpy.logits(test_x[:10], batch_size=3), from_numpy.logits(test_x[:10]), atol=1e-6)


def test_label_smoothing_is_applied(marked_tokens):
    from coca_bench.probes.attentive import train_attentive_probe

    (x, y), _ = marked_tokens
    # With smoothing eps over 4 classes the loss cannot fall below the entropy of the smoothed target.
    eps = 0.2
    floor = -((1 - eps + eps / 4) * np.log(1 - eps + eps / 4) + 3 * (eps / 4) * np.log(eps / 4))
    smoothed = train_attentive_probe(x, y, 4, _attentive_config(label_smoothing=eps, epochs=10))
    plain = train_attentive_probe(x, y, 4, _attentive_config(label_smoothing=0.0, epochs=10))
    assert min(smoothed.train_loss) >= floor - 1e-4
    assert plain.train_loss[-1] < floor - 0.2


def test_learning_rate_warms_up_then_decays_to_zero():
    from coca_bench.probes.attentive import _learning_rate

    config = _attentive_config(lr=1.0, warmup_steps=4)
    rates = [_learning_rate(step, 14, config) for step in range(15)]
    assert rates[:4] == [0.25, 0.5, 0.75, 1.0]
    assert rates[4] == 1.0 and rates[9] == pytest.approx(0.5) and rates[14] == pytest.approx(0.0)
    assert all(a >= b for a, b in zip(rates[3:], rates[4:]))


def test_attentive_probe_rejects_bad_inputs(marked_tokens):
    from coca_bench.probes.attentive import AttentiveProbeConfig, train_attentive_probe

    (x, y), _ = marked_tokens
    with pytest.raises(ValueError, match="must divide"):
        train_attentive_probe(x, y, 4, _attentive_config(num_heads=3))
    with pytest.raises(ValueError, match=r"\[0, num_classes\)"):
        train_attentive_probe(x, y, 3, _attentive_config())
    with pytest.raises(ValueError, match=r"\[samples, tokens, dim\]"):
        train_attentive_probe(x[:, 0], y, 4, _attentive_config())
    with pytest.raises(ValueError, match="integer class indices"):
        train_attentive_probe(x, y.astype(float), 4, _attentive_config())
    with pytest.raises(ValueError, match="label_smoothing"):
        AttentiveProbeConfig(label_smoothing=1.0)
    probe = train_attentive_probe(x[:8], y[:8], 4, _attentive_config(epochs=1))
    with pytest.raises(ValueError, match="width 16"):
        probe.logits(x[:2, :, :8])


def test_min_steps_adds_epochs_only_where_a_split_gives_too_few_steps(marked_tokens):
    from coca_bench.probes.attentive import train_attentive_probe

    (x, y), _ = marked_tokens  # 512 samples in batches of 32: 16 steps per epoch
    few = train_attentive_probe(x[:20], y[:20], 4, _attentive_config(epochs=2, min_steps=7))
    assert len(few.train_loss) == 7  # one step per epoch: 7 epochs reach 7 steps
    many = train_attentive_probe(x[:64], y[:64], 4, _attentive_config(epochs=2, min_steps=3))
    assert len(many.train_loss) == 2  # 2 epochs already give 4 steps
    with pytest.raises(ValueError, match="min_steps"):
        _attentive_config(min_steps=-1)


def test_the_fast_pooler_computes_coca_s_attentional_pooler_and_its_gradients():
    """The probe's forward (scores and values in the token width) is the AttentionalPooler's function: same logits
    and same parameter gradients, with every parameter perturbed so that no term vanishes."""
    import torch

    from coca_bench.probes.attentive import AttentivePoolingClassifier

    torch.manual_seed(0)
    model = AttentivePoolingClassifier(dim=32, num_classes=5, num_heads=4)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.5)  # LayerNorm gains and biases included
    tokens = torch.randn(6, 40, 32, dtype=torch.float64) * 3 + 1
    model = model.double()
    fast, reference = model(tokens), model.reference_forward(tokens)
    assert fast.shape == (6, 5) and torch.allclose(fast, reference, rtol=1e-9, atol=1e-9)
    grads = torch.autograd.grad(fast.square().sum(), list(model.parameters()))
    expected = torch.autograd.grad(reference.square().sum(), list(model.parameters()))
    for (name, _), got, want in zip(model.named_parameters(), grads, expected):
        if name.endswith("kv.bias"):  # the key bias cancels in the softmax: no gradient either way
            want = want.clone()
            want[:32] = 0
        assert torch.allclose(got, want, rtol=1e-7, atol=1e-9), name
