import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from coca_bench.cli import main

REPO = Path(__file__).resolve().parent.parent

README_PLUGIN = textwrap.dedent(
    '''
    from coca_bench.registry import TaskResult, register_task


    @register_task("my_plugin_task", groups=("custom", "image"), dataset="mine", metrics=["score"])
    def my_plugin_task(ctx, params):
        """My own task, found through --plugins."""
        samples = [{"id": str(i), "score": i % 2} for i in range(4)]
        return TaskResult(metrics={"score": 0.5}, samples=samples, split="test")
    '''
)


def identity_only_model(spec: str) -> SimpleNamespace:
    """A model handle with identity but no encoders: the plugin task never encodes."""
    digest = hashlib.sha256(spec.encode()).hexdigest()
    return SimpleNamespace(name=spec, spec=spec, weights_sha256=digest, fingerprint=digest, preprocess_fingerprint="p")


pytestmark = pytest.mark.usefixtures("clean_registry")


@pytest.fixture
def plugin_dir(tmp_path):
    folder = tmp_path / "my_plugins"
    folder.mkdir()
    (folder / "my_task.py").write_text(README_PLUGIN)
    return folder


def test_tasks_list_shows_builtin_and_plugin_tasks_without_importing_torch(plugin_dir):
    code = (
        "import sys\n"
        "from coca_bench.cli import main\n"
        f"code = main(['--tasks', 'list', '--plugins', {str(plugin_dir)!r}])\n"
        "heavy = sorted(m for m in ('torch', 'open_clip', 'torchvision') if m in sys.modules)\n"
        "print('HEAVY:', heavy)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "HEAVY: []" in lines
    mine = next(line for line in lines if line.startswith("my_plugin_task"))
    assert "custom,image" in mine and "My own task, found through --plugins." in mine
    assert any(line.startswith("imagenet_zeroshot") and "zeroshot" in line for line in lines)


def test_run_suite_py_shim_lists_tasks():
    done = subprocess.run(
        [sys.executable, "run_suite.py", "--tasks", "list"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "imagenet_zeroshot" in done.stdout


def test_user_errors_are_one_line_on_stderr_with_exit_2(plugin_dir, capsys):
    assert main(["--tasks", "no_such_task", "--plugins", str(plugin_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no_such_task" in err[0]

    assert main(["--tasks", "list", "--plugins", str(plugin_dir / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err

    missing_root = plugin_dir / "no_data_here"
    assert main(["--tasks", "custom", "--plugins", str(plugin_dir), "--data-root", str(missing_root)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == f"error: --data-root {missing_root} is not a folder; point it at the folder holding the datasets."
    )


def test_plugin_task_runs_from_the_cli_and_compare_reports_it(plugin_dir, tmp_path, monkeypatch, capsys):
    from coca_bench import runner

    monkeypatch.setattr(runner, "_load_bundled_model", lambda spec, device: identity_only_model(spec))
    out = tmp_path / "out"
    common = [
        "--plugins",
        str(plugin_dir),
        "--output",
        str(out),
        "--data-root",
        str(tmp_path),
        "--device",
        "cpu",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
        "--num-workers",
        "0",
        "--tasks",
        "custom",
    ]
    assert main([*common, "--checkpoint", "a=spec-a", "--checkpoint", "b=spec-b"]) == 0
    printed = capsys.readouterr().out
    assert "my_plugin_task" in printed and "score=0.5000" in printed
    assert (out / "a" / "my_plugin_task.json").is_file() and (out / "b" / "my_plugin_task.json").is_file()

    assert main(["compare", "--output", str(out), "--plugins", str(plugin_dir), "--resamples", "50"]) == 0
    assert "my_plugin_task" in capsys.readouterr().out
    assert (out / "comparison.md").is_file()

    assert main(["compare", "--output", str(out), "--baseline", "zzz"]) == 2
    assert "error: --baseline 'zzz'" in capsys.readouterr().err


def test_describe_and_verbose_list_show_parameters_with_defaults(capsys):
    assert main(["describe", "imagenet_zeroshot"]) == 0
    described = capsys.readouterr().out
    assert 'templates: str = "openai" (one of: "openai", "simple")' in described
    assert "logit_scale: float = 100.0" in described
    assert "mean_per_class_recall (higher is better, task aggregate" in described
    assert main(["--tasks", "list", "--verbose"]) == 0
    listing = capsys.readouterr().out
    assert "imagenet_subset_zeroshot" in listing and 'split: str = "val"' in listing
    assert main(["describe", "no_such_task"]) == 2
    assert "Unknown task 'no_such_task'" in capsys.readouterr().err


def test_param_values_parse_as_json_when_they_can():
    from coca_bench.runner import parse_param_value

    assert parse_param_value("3") == 3 and parse_param_value("0.5") == 0.5 and parse_param_value("true") is True
    assert parse_param_value("[1, 2]") == [1, 2] and parse_param_value("simple") == "simple"
    assert parse_param_value('"7"') == "7"


@pytest.mark.parametrize(
    ("param", "expected"),
    [
        ("templates=fancy", "'imagenet_zeroshot': parameter templates=\"fancy\" is not allowed; it takes one of"),
        ("kinetics_zeroshot.num_frames=abc", "'kinetics_zeroshot': parameter num_frames=\"abc\" is not allowed"),
        ("kinetics_zeroshot.frames=8", "'kinetics_zeroshot' has no parameter 'frames'"),
    ],
)
def test_a_bad_parameter_is_one_line_and_exit_2_before_any_checkpoint_loads(
    tmp_path, capsys, monkeypatch, param, expected
):
    from coca_bench import runner

    loaded: list[str] = []
    monkeypatch.setattr(runner, "_load_bundled_model", lambda spec, device: loaded.append(spec))
    tasks = "imagenet_zeroshot,kinetics_zeroshot"
    assert main(["--tasks", tasks, "--param", param, "--output", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err
    assert loaded == [] and not (tmp_path / "out" / "summary.csv").exists()


def test_checkpoints_may_be_given_as_a_comma_list_like_tasks(tmp_path, capsys, monkeypatch):
    from coca_bench import runner

    seen: list[list[str]] = []
    monkeypatch.setattr(runner, "run_suite", lambda config: seen.append(list(config.checkpoints)) or [])
    folder = tmp_path / "ckpt,v2"  # an existing path with a comma is one checkpoint
    folder.mkdir()
    common = ["--tasks", "imagenet_zeroshot", "--output", str(tmp_path / "out"), "--no-progress", "--no-compare"]
    args = ["--checkpoint", "demo, b=demo-early", "--checkpoint", str(folder), "--checkpoint", f"mine={folder}"]
    assert main([*common, *args]) == 0
    assert seen == [["demo", "b=demo-early", str(folder), f"mine={folder}"]]
    assert main([*common, "--checkpoint", "demo,,demo-early"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == "error: --checkpoint 'demo,,demo-early' has an empty entry; give one SPEC or NAME=SPEC between commas."
    )
