"""Shared test setup: every test session gets its own cache folder (bundled checkpoints, mini datasets, features)."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("COCA_BENCH_CACHE", tempfile.mkdtemp(prefix="coca_bench_test_cache_"))
if os.environ.get("PYTEST_XDIST_WORKER"):
    # One pytest-xdist worker per core: one torch thread each (read when torch is imported), and in the runs they
    # launch, so that two workers never fight over two cores with spinning OpenMP threads.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups off the items
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``-n 2 --dist loadgroup``, every test that reads the session's default run goes to one worker, so that
    the run happens once."""
    for item in items:
        if "default_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("default_run"))


@pytest.fixture()
def clean_registry():
    """An empty task registry for the test, emptied again after it (tests register their own plugin tasks)."""
    from coca_bench import registry

    registry._clear_for_tests()
    yield
    registry._clear_for_tests()


@pytest.fixture(scope="session")
def minidata_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mini datasets generated once per session (seed 0), shared by the data tests."""
    from coca_bench.data import generate_minidata

    root = tmp_path_factory.getbasetemp() / "coca_bench_minidata_seed0"
    if not root.is_dir():
        generate_minidata(root, seed=0)
    return root


TINY_OPEN_CLIP_CONFIG = {
    "embed_dim": 64,
    "vision_cfg": {
        "image_size": 64,
        "layers": 2,
        "width": 128,
        "patch_size": 16,
        "head_width": 64,
        "attentional_pool": True,
        "attn_pooler_queries": 8,
        "attn_pooler_heads": 2,
        "output_tokens": True,
    },
    "text_cfg": {
        "context_length": 32,
        "vocab_size": 49408,
        "width": 64,
        "heads": 2,
        "layers": 2,
        "embed_cls": True,
        "output_tokens": True,
    },
    "multimodal_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
    "custom_text": True,
}


@pytest.fixture(scope="session")
def tiny_open_clip(tmp_path_factory: pytest.TempPathFactory):
    """A tiny CoCa built by open_clip's own code (registered as ``coca_tiny_test``) with seeded random weights, saved
    as ``plain.bin`` (a state dict), ``train.pt`` (a training checkpoint) and ``weights.safetensors``.
    Returns (open_clip model, path of plain.bin)."""
    import json

    open_clip = pytest.importorskip("open_clip")
    import torch
    from safetensors.torch import save_file

    from coca_bench.model.parity import random_open_clip_coca

    folder = tmp_path_factory.mktemp("open_clip_config")
    (folder / "coca_tiny_test.json").write_text(json.dumps(TINY_OPEN_CLIP_CONFIG))
    open_clip.add_model_config(folder)
    reference = random_open_clip_coca("coca_tiny_test", seed=0, scale=0.1)  # predictions vary across images
    files = tmp_path_factory.mktemp("open_clip_files")
    state = reference.state_dict()
    torch.save(state, files / "plain.bin")
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, files / "train.pt")
    save_file({k: v.contiguous() for k, v in state.items()}, str(files / "weights.safetensors"))
    return reference, files / "plain.bin"


def store_result(output: Path, ckpt_name: str, task, samples: list[dict], *, params=None, settings=None) -> dict:
    """Write one (checkpoint, task) result the way the runner does, from per-sample records; returns the record."""
    from coca_bench.results import CheckpointInfo, ResultStore, RunRecordInputs, build_record
    from coca_bench.settings import RunSettings

    ckpt = CheckpointInfo(ckpt_name, f"{ckpt_name}.pt", (ckpt_name * 64)[:64])
    params = {**task.params, **(params or {})}
    settings = settings or RunSettings(device="cpu")
    record = build_record(
        task,
        RunRecordInputs(
            key="k-" + ckpt_name,
            checkpoint=ckpt,
            dataset_dir=output / "data",
            dataset_fingerprint="fp0",
            annotation_files=[],
            splits=["test"],
            params=params,
            key_material={},
            run={"settings": settings.as_dict(), "wall_time_s": 1.0, "argv": []},
        ),
        task.recompute(samples, params),
        len(samples),
        {},
        [],
    )
    ResultStore(output).write(ckpt, record, samples)
    return record


@pytest.fixture()
def store_run():
    return store_result


class PixelStatsModel:
    """A deterministic stand-in for the model handle: images embed by their pixel statistics, texts by their bytes.

    Enough for the runner, the feature cache and any task that ranks or classifies embeddings, without torch
    weights; ``collapse=True`` embeds every image identically (an untrained contrastive head).
    """

    name = "pixel-stats"
    spec = "pixel-stats"
    weights_sha256 = "e" * 64
    preprocess_fingerprint = "pixel-stats-8x8"
    device = "cpu"

    def __init__(self, dim: int = 8, collapse: bool = False) -> None:
        import numpy as np
        import torch

        rng = np.random.default_rng(0)
        self.fingerprint = f"pixel-stats-{dim}-{collapse}"
        self.collapse = collapse
        self._image_projection = torch.tensor(rng.normal(size=(6, dim)), dtype=torch.float32)
        self._text_projection = torch.tensor(rng.normal(size=(64, dim)), dtype=torch.float32)

    @staticmethod
    def preprocess(image):
        import numpy as np
        import torch

        return torch.from_numpy(np.asarray(image.resize((8, 8)), dtype=np.float32) / 255.0).permute(2, 0, 1)

    @staticmethod
    def tokenizer(texts):
        import torch

        ids = torch.zeros(len(texts), 64, dtype=torch.long)
        for row, text in enumerate(texts):
            codes = list(text.encode("utf-8"))[:64]
            ids[row, : len(codes)] = torch.tensor(codes)
        return ids

    def encode_image(self, pixels, normalize=True):
        import torch

        stats = torch.cat([pixels.mean(dim=(2, 3)) - 0.5, pixels.std(dim=(2, 3)) - 0.2], dim=1)  # centred
        if self.collapse:
            stats = torch.ones_like(stats) + 1e-4 * stats
        out = stats @ self._image_projection
        return torch.nn.functional.normalize(out, dim=-1) if normalize else out

    def image_tokens(self, pixels):
        return pixels.flatten(2).transpose(1, 2)  # [B, 64 pixels, 3 channels]

    def encode_text(self, ids, normalize=True):
        out = (ids.float() / 255.0) @ self._text_projection
        return __import__("torch").nn.functional.normalize(out, dim=-1) if normalize else out

    def autocast(self, precision):
        import contextlib

        return contextlib.nullcontext()


def run_task(
    tmp_path: Path, task: str, data_root: Path, model=None, params=(), plugins=(), **settings
) -> tuple[dict, list[dict]]:
    """One task through the real runner with a stand-in model; returns (record, per-sample records)."""
    from coca_bench.results import ResultStore
    from coca_bench.runner import RunConfig, run_suite
    from coca_bench.settings import RunSettings

    model = model or PixelStatsModel()
    settings = {"device": "cpu", "num_workers": 0, "progress": False, "cache_dir": tmp_path / "cache", **settings}
    config = RunConfig(tasks=task, checkpoints=[f"m={model.spec}"], data_root=data_root, output=tmp_path / "out",
                       params=list(params), plugins=list(plugins), settings=RunSettings(**settings))  # fmt: skip
    (record,) = run_suite(config, load_model=lambda spec, device: model)
    return record, ResultStore(tmp_path / "out").samples("m", task)


REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def readme_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The README's worked plugin example, extracted into a plugin folder of its own."""
    import re

    text = (REPO_ROOT / "README.md").read_text()
    code = re.search(r"<!-- plugin-example:start -->\n```python\n(.*?)```\n<!-- plugin-example:end -->", text, re.S)
    assert code, "the README must hold the worked plugin example between its markers"
    folder = tmp_path_factory.mktemp("my_tasks")
    (folder / "coco_caption_pairing.py").write_text(code.group(1))
    return folder


@dataclass(frozen=True)
class DefaultRun:
    output: Path
    stdout: str
    stderr: str
    seconds: float
    comparison_csv: str  # as the run wrote it (demo against demo-early), before any test compares again


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory, readme_plugin: Path) -> DefaultRun:
    """The README's main command, once per session, as a user types it: every task on both shipped checkpoints on the
    bundled mini data, then the comparison and the report, with the README's plugin beside the built-in tasks. The
    end-to-end tests (smoke, demo margins, published figures) read this run instead of each launching their own."""
    import subprocess
    import sys
    import time

    output = tmp_path_factory.mktemp("default_run") / "results"
    command = [sys.executable, "run_suite.py", "--tasks", "all", "--plugins", str(readme_plugin),
               "--output", str(output), "--no-progress"]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    assert done.returncode == 0, (
        f"the default run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )
    seconds = time.monotonic() - started
    return DefaultRun(output, done.stdout, done.stderr, seconds, (output / "comparison.csv").read_text())
