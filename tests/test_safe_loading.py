"""Nothing the suite reads can run code (no pickle anywhere), and every result names the plugin file behind it."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

from conftest import run_task

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*(ROOT / "coca_bench").rglob("*.py"), *(ROOT / "tasks").glob("*.py"), ROOT / "run_suite.py"])
UNPICKLING_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
# Pickle that never touches a file: objects passed between the ranks of one torchrun job (torch.distributed's
# *_object collectives pickle anyway). Anything added here must say why it cannot load a checkpoint or a cache.
ALLOWED = {"coca_bench/distributed_features.py": "checks that an exception can be sent to rank 0"}


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _unsafe_loads(path: Path, root: Path = ROOT) -> list[str]:
    """Imports of unpickling modules, ``torch.load`` without ``weights_only=True``, ``np.load`` with pickles on."""
    problems = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            problems += [f"imports {n}" for n in names if n.split(".")[0] in UNPICKLING_MODULES]
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute) or node.func.attr != "load":
            continue
        owner = ast.unparse(node.func.value)
        if owner == "torch":
            weights_only = _keyword(node, "weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                problems.append(f"line {node.lineno}: torch.load without weights_only=True")
        if owner in ("np", "numpy"):
            allow = _keyword(node, "allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                problems.append(f"line {node.lineno}: np.load with allow_pickle")
    return [f"{path.relative_to(root)}: {p}" for p in problems]


def test_no_checkpoint_or_cache_loader_can_unpickle_code():
    assert len(SOURCES) > 20
    checked = [path for path in SOURCES if path.relative_to(ROOT).as_posix() not in ALLOWED]
    assert [p for path in checked for p in _unsafe_loads(path)] == []


def test_the_check_catches_unsafe_loaders(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nimport torch, numpy as np\ntorch.load('w.pt')\ntorch.load('w.pt', weights_only=False)\n"
        "np.load('x.npy', allow_pickle=True)\nnp.load('x.npz', allow_pickle=False)\n"
    )
    assert _unsafe_loads(bad, tmp_path) == [
        "bad.py: imports pickle",
        "bad.py: line 3: torch.load without weights_only=True",
        "bad.py: line 4: torch.load without weights_only=True",
        "bad.py: line 5: np.load with allow_pickle",
    ]


def test_a_result_records_the_plugin_file_that_defined_its_task_and_its_sha256(tmp_path, minidata_root):
    record, _ = run_task(tmp_path, "imagenet_zeroshot", minidata_root)
    import coca_bench.builtin_tasks  # the checkout's tasks/, installed under this name

    source = Path(record["task"]["source"])
    assert source.resolve() == (Path(coca_bench.builtin_tasks.__file__).parent / "imagenet_zeroshot.py").resolve()
    assert record["task"]["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
