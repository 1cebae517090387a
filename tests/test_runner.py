import contextlib
import csv
import hashlib
import json
import os
import textwrap
from pathlib import Path

import pytest
import torch

from coca_bench import registry
from coca_bench.runner import RunConfig, RunError, check_precision, parse_checkpoint_arg, run_suite
from coca_bench.settings import RunSettings, SettingsError

PLUGIN = textwrap.dedent(
    '''
    """Tasks for the runner tests, written the way the README tells plugin authors to."""
    import random
    from pathlib import Path

    from coca_bench.data.records import RecordSet
    from coca_bench.registry import MetricSpec, TaskResult, register_task

    CALLS = Path(__file__).with_name("calls.log")


    def _count(name):
        with CALLS.open("a") as handle:
            handle.write(name + "\\n")


    @register_task("fake_ok", groups=("fake",), dataset="fake", metrics=[MetricSpec("acc")], params={"threshold": 0.5})
    def fake_ok(ctx, params):
        """Fraction of values above a threshold."""
        assert ctx.task.name == "fake_ok" and ctx.dataset_dir == ctx.data_root / "fake"
        labels = ctx.dataset_dir / "labels.txt"
        values = tuple(float(x) for x in labels.read_text().split())
        records = ctx.load(RecordSet(items=values, split="test", annotation_files=(labels,)))
        text = ctx.features.embed_texts(["a cat", "a dog"])
        _count("fake_ok")
        samples = [{"id": str(i), "acc": int(v > params["threshold"])} for i, v in enumerate(records.items)]
        return TaskResult(
            metrics={"acc": sum(s["acc"] for s in samples) / len(samples)},
            samples=samples,
            extra_config={"text_dim": int(text.shape[1])},
        )


    @register_task("fake_forgets_limit", groups=("misbehaving",), dataset="fake", metrics=["acc"])
    def fake_forgets_limit(ctx, params):
        """Reads every value whatever --limit says."""
        values = (ctx.dataset_dir / "labels.txt").read_text().split()
        return TaskResult(samples=[{"id": str(i), "acc": 1} for i in range(len(values))])


    @register_task("fake_wrong_mean", groups=("misbehaving",), dataset="fake", metrics=["acc"])
    def fake_wrong_mean(ctx, params):
        """Reports a mean its samples do not have."""
        return TaskResult(metrics={"acc": 0.9}, samples=[{"id": "0", "acc": 0}, {"id": "1", "acc": 1}])


    @register_task("fake_wrong_mean_partial", groups=("misbehaving",), dataset="fake", metrics=["acc", "hits"])
    def fake_wrong_mean_partial(ctx, params):
        """Reports a wrong mean and leaves another declared metric for the runner."""
        return TaskResult(metrics={"acc": 0.9}, samples=[{"id": "0", "acc": 0, "hits": 1}, {"id": "1", "acc": 1, "hits": 1}])


    @register_task("fake_nan_sample", groups=("misbehaving",), dataset="fake", metrics=["acc"])
    def fake_nan_sample(ctx, params):
        """One sample's metric is NaN (undefined): the stored file holds null there."""
        samples = [{"id": "0", "acc": 0.0}, {"id": "1", "acc": 1.0}, {"id": "2", "acc": 1.0}, {"id": "3", "acc": float("nan")}]
        return TaskResult(samples=samples)


    @register_task("fake_unstorable_sample", groups=("misbehaving",), dataset="fake", metrics=["acc"])
    def fake_unstorable_sample(ctx, params):
        return TaskResult(samples=[{"id": "0", "acc": 1.0, "logits": object()}])


    def _corpus(samples, params):
        return {"corpus": sum(s["x"] for s in samples) / len(samples)}


    @register_task("fake_wrong_aggregate", groups=("misbehaving",), dataset="fake",
                   metrics=[MetricSpec("corpus", aggregation="task")], aggregate=_corpus)
    def fake_wrong_aggregate(ctx, params):
        """Reports a corpus metric its own aggregate does not give on its samples."""
        return TaskResult(metrics={"corpus": 0.9}, samples=[{"id": "0", "x": 0.0}, {"id": "1", "x": 1.0}])


    @register_task("fake_unrecomputable", groups=("misbehaving",), dataset="fake",
                   metrics=[MetricSpec("corpus", aggregation="task"), MetricSpec("jar_score", aggregation="task")],
                   aggregate=_corpus)
    def fake_unrecomputable(ctx, params):
        """A metric (like METEOR) that the aggregate cannot recompute from samples."""
        return TaskResult(metrics={"corpus": 0.5, "jar_score": 0.25}, samples=[{"id": "0", "x": 0.0}, {"id": "1", "x": 1.0}])


    @register_task("fake_seed_param", groups=("misbehaving",), dataset="fake", metrics=["acc"], params={"seed": 0})
    def fake_seed_param(ctx, params):
        """A task parameter that shares its name with a run setting."""
        ctx.model
        _count("fake_seed_param")
        return TaskResult(samples=[{"id": "0", "acc": params["seed"] + ctx.seed}])


    @register_task("fake_random", groups=("fake",), dataset="fake", metrics=["draw"])
    def fake_random(ctx, params):
        """Reports a random draw: equal across runs only if the runner seeds every task."""
        import numpy as np
        import torch

        ctx.model
        _count("fake_random")
        draw = random.random() + float(np.random.rand()) + float(torch.rand(1))
        return TaskResult(metrics={"draw": draw}, samples=[{"id": "0", "draw": draw}], split="test")


    @register_task("fake_boom", groups=("broken",), dataset="fake", metrics=["acc"])
    def fake_boom(ctx, params):
        """Always fails."""
        ctx.model
        _count("fake_boom")
        raise RuntimeError("boom")
    '''
)


class TinyModel:
    """Just enough of the model handle for the runner and the feature cache."""

    def __init__(self, spec: str):
        self.name = "tiny-" + spec
        self.spec = spec
        self.weights_sha256 = hashlib.sha256(spec.encode()).hexdigest()
        self.fingerprint = "fp-" + spec
        self.preprocess_fingerprint = "pre"
        self.device = "cpu"
        self.texts_encoded = 0

    def tokenizer(self, texts):
        return torch.tensor([[len(t), ord(t[-1])] for t in texts])

    def encode_text(self, ids, normalize=True):
        self.texts_encoded += len(ids)
        return torch.nn.functional.normalize(ids.float(), dim=-1)

    def autocast(self, precision):
        return contextlib.nullcontext()


pytestmark = pytest.mark.usefixtures("clean_registry")


@pytest.fixture
def workspace(tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "fake_tasks.py").write_text(PLUGIN)
    data = tmp_path / "data" / "fake"
    data.mkdir(parents=True)
    (data / "labels.txt").write_text("0.1 0.9 0.7 0.2\n")
    return tmp_path


def config(workspace: Path, params=(), **overrides) -> RunConfig:
    run_fields = {"tasks", "checkpoints", "data_root", "output", "plugins"}
    values = dict(
        tasks="fake_ok",
        checkpoints=["tiny=spec-a"],
        data_root=workspace / "data",
        output=workspace / "out",
        plugins=[workspace / "plugins"],
    )
    values.update({k: v for k, v in overrides.items() if k in run_fields})
    settings = dict(device="cpu", num_workers=0, cache_dir=workspace / "cache", progress=False)
    settings.update({k: v for k, v in overrides.items() if k not in run_fields})
    return RunConfig(**values, params=list(params), settings=RunSettings(**settings))


def calls(workspace: Path) -> list[str]:
    log = workspace / "plugins" / "calls.log"
    return log.read_text().split() if log.exists() else []


def test_run_writes_results_reuses_them_and_force_reruns(workspace):
    (record,) = run_suite(config(workspace), load_model=lambda spec, device: TinyModel(spec))
    out = workspace / "out"
    assert record["metrics"] == {"acc": 0.5}
    assert (out / "tiny" / "fake_ok.json").is_file()
    assert len((out / "tiny" / "fake_ok.samples.jsonl").read_text().splitlines()) == 4
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert rows[0]["checkpoint"] == "tiny" and float(rows[0]["fake_ok/acc"]) == 0.5
    assert record["config"]["extra"] == {"text_dim": 2}
    assert record["run"]["feature_cache"]["items_encoded"] == 2
    assert calls(workspace) == ["fake_ok"]

    (again,) = run_suite(config(workspace), load_model=lambda spec, device: TinyModel(spec))
    assert calls(workspace) == ["fake_ok"]  # reused, not rerun
    assert again["key"] == record["key"] and again["metrics"] == record["metrics"]

    model = TinyModel("spec-a")
    run_suite(config(workspace, force=True), load_model=lambda spec, device: model)
    assert calls(workspace) == ["fake_ok", "fake_ok"]
    assert model.texts_encoded == 2  # --force recomputes the cached features too, not just the result


def test_limit_edited_annotations_and_other_weights_each_rerun(workspace):
    load = lambda spec, device: TinyModel(spec)  # noqa: E731
    run_suite(config(workspace), load_model=load)
    (limited,) = run_suite(config(workspace, limit=2), load_model=load)
    assert limited["num_samples"] == 2 and limited["run"]["settings"]["limit"] == 2
    assert len(calls(workspace)) == 2  # a --limit run is never taken for the full one

    (workspace / "data" / "fake" / "labels.txt").write_text("0.9 0.9 0.7 0.2\n")
    (edited,) = run_suite(config(workspace, limit=2), load_model=load)
    assert len(calls(workspace)) == 3 and edited["metrics"]["acc"] == 1.0

    # A file that no record names is not part of the key: the fingerprint follows what the readers read.
    (workspace / "data" / "fake" / "extra").mkdir()
    (workspace / "data" / "fake" / "extra" / "img.jpg").write_bytes(b"...")
    run_suite(config(workspace, limit=2), load_model=load)
    assert len(calls(workspace)) == 3
    # Same size, other bytes, mtime set back: contents are read again (the inode change time moved).
    labels = workspace / "data" / "fake" / "labels.txt"
    before = labels.stat()
    labels.write_text("0.1 0.9 0.7 0.2\n")
    os.utime(labels, ns=(before.st_atime_ns, before.st_mtime_ns))
    (restored,) = run_suite(config(workspace, limit=2), load_model=load)
    assert len(calls(workspace)) == 4 and restored["metrics"]["acc"] == 0.5

    # A strict run never reuses a non-strict result (which may have recorded skips).
    (strict,) = run_suite(config(workspace, limit=2, strict=True), load_model=load)
    assert len(calls(workspace)) == 5 and strict["run"]["settings"]["strict"] is True

    with pytest.raises(RunError, match="another checkpoint"):  # same name, other weights: refuse to mix
        run_suite(config(workspace, checkpoints=["tiny=spec-b"]), load_model=load)


def test_failing_task_keeps_the_tasks_finished_before_it(workspace):
    with pytest.raises(RuntimeError, match="boom"):
        run_suite(config(workspace, tasks="fake_ok,fake_boom"), load_model=lambda spec, device: TinyModel(spec))
    out = workspace / "out"
    assert json.loads((out / "tiny" / "fake_ok.json").read_text())["metrics"] == {"acc": 0.5}
    assert not (out / "tiny" / "fake_boom.json").exists()
    assert "fake_ok/acc" in (out / "summary.csv").read_text()
    run_suite(config(workspace, tasks="fake"), load_model=lambda spec, device: TinyModel(spec))
    assert calls(workspace) == ["fake_ok", "fake_boom", "fake_random"]  # fake_ok was not redone


def test_every_task_starts_from_the_same_seed(workspace):
    load = lambda spec, device: TinyModel(spec)  # noqa: E731
    (first,) = run_suite(config(workspace, tasks="fake_random"), load_model=load)
    torch.rand(5)  # disturb the global random state
    (forced,) = run_suite(config(workspace, tasks="fake_random", force=True), load_model=load)
    (other_seed,) = run_suite(config(workspace, tasks="fake_random", seed=1), load_model=load)
    assert forced["metrics"] == first["metrics"]
    assert other_seed["metrics"] != first["metrics"]  # the seed is in the key, so it reran


def test_checkpoints_are_named_by_the_model_unless_named_explicitly(workspace):
    records = run_suite(config(workspace, checkpoints=["spec-a", "mine=spec-b"]), load_model=lambda s, d: TinyModel(s))
    assert sorted(r["checkpoint"]["name"] for r in records) == ["mine", "tiny-spec-a"]
    assert (workspace / "out" / "mine" / "checkpoint.json").is_file()
    with pytest.raises(RunError, match="both named"):
        run_suite(config(workspace, checkpoints=["x=spec-a", "x=spec-b"]), load_model=lambda s, d: TinyModel(s))


def test_a_checkpoint_that_cannot_load_is_a_run_error(workspace):
    def load(spec, device):
        raise FileNotFoundError(f"No checkpoint at {spec}")

    with pytest.raises(RunError, match="Cannot load checkpoint 'missing.pt'"):
        run_suite(config(workspace, checkpoints=["missing.pt"]), load_model=load)


def test_bad_settings_fail_before_any_work(workspace):
    with pytest.raises(RunError, match="fp16 needs a CUDA"):
        check_precision("fp16", "cpu")
    check_precision("bf16", "cpu")  # bf16 autocast works on CPU
    with pytest.raises(SettingsError, match="--limit"):
        run_suite(config(workspace, limit=0))
    with pytest.raises(SettingsError, match="--precision"):
        run_suite(config(workspace, precision="fp8"))
    with pytest.raises(registry.RegistryError, match="neither a task nor a group"):
        run_suite(config(workspace, tasks="nothing_like_this"))
    assert calls(workspace) == []


def test_parse_checkpoint_arg():
    assert parse_checkpoint_arg("base=open_clip:coca_ViT-B-32:laion2b_s13b_b90k") == (
        "base",
        "open_clip:coca_ViT-B-32:laion2b_s13b_b90k",
    )
    assert parse_checkpoint_arg("open_clip:coca_ViT-B-32:x.pt") == (None, "open_clip:coca_ViT-B-32:x.pt")
    with pytest.raises(RunError, match="NAME=SPEC"):
        parse_checkpoint_arg("bad name=spec")


def test_a_plugin_that_forgets_the_limit_cannot_store_a_full_run_under_a_limited_key(workspace):
    load = lambda spec, device: TinyModel(spec)  # noqa: E731
    with pytest.raises(registry.RegistryError, match=r"4 samples under --limit 2.*ctx\.load"):
        run_suite(config(workspace, tasks="fake_forgets_limit", limit=2), load_model=load)
    assert not (workspace / "out" / "tiny" / "fake_forgets_limit.json").exists()
    (full,) = run_suite(config(workspace, tasks="fake_forgets_limit"), load_model=load)
    assert full["metrics"] == {"acc": 1.0}  # left out by the task: computed by the runner from the declaration


def test_a_returned_mean_that_disagrees_with_its_samples_is_refused(workspace):
    with pytest.raises(registry.RegistryError, match="acc=0.9.*gives 0.5"):
        run_suite(config(workspace, tasks="fake_wrong_mean"), load_model=lambda spec, device: TinyModel(spec))


def test_a_returned_metric_is_checked_even_when_another_is_left_to_the_runner(workspace):
    load = lambda spec, device: TinyModel(spec)  # noqa: E731
    with pytest.raises(registry.RegistryError, match="acc=0.9.*gives 0.5"):
        run_suite(config(workspace, tasks="fake_wrong_mean_partial"), load_model=load)
    assert not (workspace / "out" / "tiny" / "fake_wrong_mean_partial.json").exists()


def test_a_returned_task_aggregate_must_equal_its_recomputation_from_the_samples(workspace):
    load = lambda spec, device: TinyModel(spec)  # noqa: E731
    with pytest.raises(registry.RegistryError, match="corpus=0.9.*aggregate.*gives 0.5"):
        run_suite(config(workspace, tasks="fake_wrong_aggregate"), load_model=load)
    (record,) = run_suite(config(workspace, tasks="fake_unrecomputable"), load_model=load)
    assert record["metrics"] == {"corpus": 0.5, "jar_score": 0.25}
    assert (
        list(record["unchecked_metrics"]) == ["jar_score"] and "aggregate" in record["unchecked_metrics"]["jar_score"]
    )


def test_metrics_are_computed_from_the_samples_as_they_are_stored(workspace):
    """A NaN sample field is stored as null, which the aggregate (and the comparison's resamples) leave out: the
    stored metric must be that one, not the NaN the in-memory samples would give."""
    from coca_bench.results import ResultStore

    (record,) = run_suite(config(workspace, tasks="fake_nan_sample"), load_model=lambda spec, device: TinyModel(spec))
    stored = ResultStore(workspace / "out").samples("tiny", "fake_nan_sample")
    assert stored[3]["acc"] is None
    assert record["metrics"]["acc"] == pytest.approx(2 / 3)
    assert record["metrics"] == registry.get_task("fake_nan_sample").recompute(stored, {})
    with pytest.raises(
        registry.RegistryError, match=r"returned a sample that cannot be stored: samples\[0\]\.logits is"
    ):
        run_suite(config(workspace, tasks="fake_unstorable_sample"), load_model=lambda spec, device: TinyModel(spec))


def test_a_task_parameter_named_like_a_setting_never_overwrites_it(workspace):
    load = lambda spec, device: TinyModel(spec)  # noqa: E731
    (first,) = run_suite(config(workspace, tasks="fake_seed_param", seed=1), load_model=load)
    assert first["config"]["params"] == {"seed": 0} and first["run"]["settings"]["seed"] == 1
    assert first["metrics"]["acc"] == 1.0
    # Swapping the two values is another computation; it must not be served from the first one's key.
    (swapped,) = run_suite(config(workspace, ["fake_seed_param.seed=1"], tasks="fake_seed_param"), load_model=load)
    assert calls(workspace) == ["fake_seed_param", "fake_seed_param"] and swapped["key"] != first["key"]


def test_params_from_the_command_line_are_applied_recorded_and_keyed(workspace):
    load = lambda spec, device: TinyModel(spec)  # noqa: E731
    (default,) = run_suite(config(workspace), load_model=load)
    (strict_threshold,) = run_suite(config(workspace, ["threshold=0.8"]), load_model=load)
    assert strict_threshold["metrics"]["acc"] == 0.25 and strict_threshold["config"]["params"]["threshold"] == 0.8
    assert strict_threshold["key"] != default["key"]
    (again,) = run_suite(config(workspace, ["fake_ok.threshold=0.8"]), load_model=load)
    assert again["key"] == strict_threshold["key"] and calls(workspace) == ["fake_ok", "fake_ok"]
    with pytest.raises(RunError, match=r"no parameter 'treshold'.*\['threshold'\]"):
        run_suite(config(workspace, ["fake_ok.treshold=1"]), load_model=load)
    with pytest.raises(RunError, match="no selected task has a parameter 'nope'"):
        run_suite(config(workspace, ["nope=1"]), load_model=load)
