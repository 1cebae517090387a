"""The result key covers every data file a task reads, by construction: each built-in task's read pass runs on the
mini datasets under an audit hook, and every file it opens under the data root or among the package's data files
(class lists) must be named by the record sets it loaded, which is what the dataset fingerprint hashes.

A reader that opens a file without registering it (a class list read beside the records, a csv found next to a
split) would let an edit to that file be served from a stale result; this test names the task and the file.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from coca_bench.fingerprints import PACKAGE_ROOT, _plain
from coca_bench.registry import all_tasks, read_records
from coca_bench.runner import load_task_registry
from coca_bench.settings import RunSettings

_RECORDING: dict[str, set[Path] | None] = {"opened": None}
_HOOKED = threading.Event()


def _on_audit(event: str, args: tuple) -> None:
    opened = _RECORDING["opened"]
    if opened is not None and event == "open" and isinstance(args[0], (str, Path)):
        opened.add(Path(args[0]).resolve())


def _clear_function_caches() -> None:
    """Readers remember parsed class lists (``functools.cache``); a task that reads a list an earlier task already
    read must be seen opening it too."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("coca_bench") or module is None:
            continue
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", "") == name:
                value.cache_clear()


def _named_files(inputs) -> set[Path]:
    files: dict[Path, None] = {}
    for records in inputs.record_sets:
        _plain(records, files)
    return {Path(p).resolve() for p in files}


def _recorded_reads(data_root: Path, read, *args) -> tuple[set[Path], set[Path]]:
    """``read(*args)`` (which returns the task's TaskInputs) with caches cleared, under the audit hook: (the data files
    it opened, those its records do not name)."""
    _clear_function_caches()
    _RECORDING["opened"] = opened = set()
    try:
        inputs = read(*args)
    finally:
        _RECORDING["opened"] = None
    data = {p for p in opened if _is_data_file(p, data_root)}
    return data, data - _named_files(inputs)


def _run_and_inputs(task, context, params):
    task.run(context, dict(params))
    return context.inputs


def _is_data_file(path: Path, data_root: Path) -> bool:
    if path.is_relative_to(data_root):
        return True
    return path.is_relative_to(PACKAGE_ROOT) and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts


@pytest.fixture(scope="module")
def audit_hook():
    if not _HOOKED.is_set():  # an audit hook cannot be removed: one per process, idle unless recording
        sys.addaudithook(_on_audit)
        _HOOKED.set()
    yield


def _cases() -> list[tuple[str, dict]]:
    """Every task with its defaults, then with each other choice of each parameter that declares choices (a label
    space, a reference format, a VQA mode, an ImageNet-V2 release), one at a time."""
    cases = []
    for name, task in sorted(all_tasks().items()):
        cases.append((name, {}))
        for key, param in task.param_specs.items():
            cases += [(name, {key: choice}) for choice in param.choices if choice != param.default]
    return cases


def test_every_file_a_task_opens_while_reading_is_named_by_its_records(audit_hook, minidata_root: Path) -> None:
    from coca_bench.errors import CocaBenchError

    load_task_registry()
    data_root = minidata_root.resolve()
    settings = RunSettings(device="cpu", num_workers=0, progress=False)
    checked, refused = [], []
    for name, overrides in _cases():
        task = all_tasks()[name]
        try:
            read, unnamed = _recorded_reads(
                data_root, read_records, task, minidata_root, task.resolve_params(overrides), settings
            )
        except CocaBenchError:  # a layout the mini data does not have (another ImageNet-V2 release): nothing read
            refused.append((name, overrides))
            continue
        assert not unnamed, f"{name} {overrides} ({task.source}) read files its records do not name: {sorted(unnamed)}"
        if read:
            checked.append((name, overrides))
    assert len({name for name, _ in checked}) >= 25, checked  # every built-in task reads the mini data
    assert len(checked) >= 2 * len(refused), refused  # most parameter choices read the mini data too


def test_every_file_a_task_opens_in_its_real_run_is_named_by_its_records(audit_hook, minidata_root: Path) -> None:
    """The same over whole runs (a tiny model, two evaluated samples each): a file a task opened only after it
    reached for the model (a candidate-answer list, a reference file) would escape the read pass, and so the key.
    Python-level opens only: PIL's image reads are seen, decord's and PyAV's video reads are not (those clips are
    record paths by construction)."""
    from coca_bench.features import FeatureExtractor
    from coca_bench.model import load_model
    from coca_bench.registry import TaskContext

    load_task_registry()
    data_root = minidata_root.resolve()
    settings = RunSettings(device="cpu", num_workers=0, progress=False, limit=2)
    model = load_model("tiny-random-s0")
    checked = []
    for name, task in sorted(all_tasks().items()):
        params = task.resolve_params()
        features = FeatureExtractor(model, None, settings)  # no cache: every read happens in this run
        context = TaskContext(
            task, minidata_root / task.dataset_folder(params), minidata_root, settings, model, features
        )
        read, unnamed = _recorded_reads(data_root, _run_and_inputs, task, context, params)
        assert not unnamed, f"{name} ({task.source}) read files its records do not name: {sorted(unnamed)}"
        if read:
            checked.append(name)
    assert len(checked) >= 25, checked
