"""Tasks as declarations: the README's variant plugin on a mini ImageNet-V2 in its shipped layout, plugins that
import helpers and built-in task modules, and the report showing a plugin task's pictures from its declared view."""

from __future__ import annotations

import re
import shutil
import textwrap
from pathlib import Path

import pytest
from conftest import run_task

from coca_bench import registry

ROOT = Path(__file__).resolve().parents[1]
V2_FOLDER = "imagenetv2-matched-frequency-format-val"

pytestmark = pytest.mark.usefixtures("clean_registry")


def _readme_variant() -> str:
    text = (ROOT / "README.md").read_text()
    code = re.search(r"<!-- variant-example:start -->\n```python\n(.*?)```\n<!-- variant-example:end -->", text, re.S)
    assert code, "the README must hold the variant example between its markers"
    return code.group(1)


def _mini_imagenet_v2(minidata_root: Path, data_root: Path) -> Path:
    """The mini ImageNet's val images in ImageNet-V2's layout: one folder per label *index*, ``.jpeg`` files."""
    from coca_bench.data.imagenet import read_synset_mapping

    source = minidata_root / "imagenet"
    wnids, _ = read_synset_mapping(source / "LOC_synset_mapping.txt")
    target = data_root / "imagenet_v2"
    for index, wnid in enumerate(wnids):
        folder = target / V2_FOLDER / str(index)
        folder.mkdir(parents=True)
        for image in sorted((source / "val" / wnid).iterdir()):
            shutil.copy(image, folder / f"{image.stem}.jpeg")
    shutil.copy(source / "LOC_synset_mapping.txt", target / "LOC_synset_mapping.txt")
    return target


def test_the_readme_variant_is_three_lines_and_scores_imagenet_v2_like_imagenet(tmp_path, minidata_root):
    from coca_bench.runner import load_task_registry

    code = _readme_variant()
    assert len([line for line in code.splitlines() if line.strip()]) <= 8  # an import and one call
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "imagenet_v2.py").write_text(code)
    data_root = tmp_path / "data"
    shutil.copytree(minidata_root / "imagenet", data_root / "imagenet")
    v2 = _mini_imagenet_v2(minidata_root, data_root)
    tasks = load_task_registry([plugins])
    spec = tasks["my_imagenet_v2_zeroshot"]
    assert spec.variant_of == "imagenet_zeroshot" and spec.dataset == "imagenet_v2"
    assert spec.params["split"] == V2_FOLDER and spec.metrics == tasks["imagenet_zeroshot"].metrics

    variant_record, variant_samples = run_task(tmp_path / "v2", "my_imagenet_v2_zeroshot", data_root,
                                               plugins=[plugins])  # fmt: skip
    base_record, base_samples = run_task(tmp_path / "in", "imagenet_zeroshot", data_root, plugins=[plugins])
    assert variant_record["metrics"] == base_record["metrics"]  # the same images under their label indices
    assert sorted((s["label"], s["pred"]) for s in variant_samples) == sorted(
        (s["label"], s["pred"]) for s in base_samples
    )
    assert variant_record["dataset"]["root"] == str(v2)
    assert variant_record["task"]["source"] == str(plugins / "imagenet_v2.py")

    from coca_bench.report import write_report

    page = write_report(tmp_path / "v2" / "out", tasks).read_text()
    section = page.split('id="task-my_imagenet_v2_zeroshot"', 1)[-1].split("</section>", 1)[0]
    assert 'class="thumb" src="data:image/jpeg;base64,' in section, "the plugin task's mistakes show their images"


def test_a_plugin_imports_a_helper_beside_it_and_a_builtin_task_module(tmp_path):
    from coca_bench.runner import load_task_registry

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "_common.py").write_text("PREFIX = 'helper'\n")
    (plugins / "uses_helper.py").write_text(
        textwrap.dedent(
            """
            import _common
            import coca_bench.builtin_tasks.imagenet_zeroshot as builtin
            from coca_bench.registry import register_task
            from coca_bench.tasklib import CLASSIFICATION_METRICS, classification_aggregate

            from ._common import PREFIX

            @register_task(f"{PREFIX}_task", groups=("x",), dataset="imagenet", metrics=CLASSIFICATION_METRICS,
                           aggregate=classification_aggregate)
            def run(ctx, params):
                return builtin.imagenet_zeroshot(ctx, {**params, "split": "val", "templates": "simple",
                                                       "logit_scale": 100.0, "label_space": "full"})
            """
        )
    )
    tasks = load_task_registry([plugins])
    assert "helper_task" in tasks and "imagenet_zeroshot" in tasks
    assert tasks["helper_task"].source == str(plugins / "uses_helper.py")
    assert tasks["imagenet_zeroshot"].source.endswith("tasks/imagenet_zeroshot.py")  # not blamed on the plugin
    assert not any(spec.source.endswith("_common.py") for spec in tasks.values())
    assert load_task_registry([plugins]) == tasks  # loading again registers nothing twice


def test_registering_a_name_twice_blames_both_files(tmp_path):
    from coca_bench.runner import load_task_registry

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "clash.py").write_text(
        "from coca_bench.registry import variant\nvariant('imagenet_zeroshot', 'coco_retrieval')\n"
    )
    with pytest.raises(
        registry.RegistryError, match=r"'coco_retrieval' is registered twice.*image_text_retrieval.*clash"
    ):
        load_task_registry([plugins])


def test_a_variant_of_an_unknown_task_names_its_file(tmp_path):
    from coca_bench.runner import load_task_registry

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "orphan.py").write_text("from coca_bench.registry import variant\nvariant('no_such_task', 'mine')\n")
    with pytest.raises(registry.RegistryError, match=r"orphan\.py declares 'mine' as a variant of 'no_such_task'"):
        load_task_registry([plugins])


def test_a_variant_default_is_checked_against_the_base_declaration(tmp_path):
    from coca_bench.params import ParamError
    from coca_bench.runner import load_task_registry

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "bad.py").write_text(
        "from coca_bench.registry import variant\nvariant('imagenet_zeroshot', 'mine', params={'templates': 'fancy'})\n"
    )
    with pytest.raises((ParamError, registry.RegistryError), match="templates"):
        load_task_registry([plugins])
