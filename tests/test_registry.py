import textwrap

import pytest

from coca_bench.params import ParamError
from coca_bench.registry import RegistryError, load_plugins, select_tasks

pytestmark = pytest.mark.usefixtures("clean_registry")


def write_plugin(folder, filename, name, groups=("g",), body="raise NotImplementedError"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(
        textwrap.dedent(
            f"""
            from coca_bench.registry import register_task

            @register_task({name!r}, groups={tuple(groups)!r}, dataset="d", metrics=["m"], params={{"p": 1}})
            def run(ctx, params):
                '''A test task.'''
                {body}
            """
        )
    )
    return path


def test_plugin_that_fails_to_import_names_its_file(tmp_path):
    (tmp_path / "broken.py").write_text("import not_a_module_anywhere\n")
    with pytest.raises(RegistryError, match=r"broken\.py.*ModuleNotFoundError"):
        load_plugins([tmp_path], entry_points=False)


def test_duplicate_task_name_across_two_files_names_both(tmp_path):
    first = write_plugin(tmp_path, "a_first.py", "same")
    second = write_plugin(tmp_path, "b_second.py", "same")
    with pytest.raises(RegistryError) as info:
        load_plugins([tmp_path], entry_points=False)
    assert str(first) in str(info.value) and str(second) in str(info.value)


def test_loading_the_same_folder_twice_is_not_a_duplicate(tmp_path):
    write_plugin(tmp_path, "one.py", "once")
    load_plugins([tmp_path], entry_points=False)
    assert list(load_plugins([tmp_path], entry_points=False)) == ["once"]


def test_missing_plugin_folder_is_a_clear_error(tmp_path):
    with pytest.raises(RegistryError, match="does not exist"):
        load_plugins([tmp_path / "nowhere"], entry_points=False)


def test_select_by_name_group_and_all_in_registry_order_without_repeats(tmp_path):
    write_plugin(tmp_path, "a.py", "alpha", groups=("image", "zeroshot"))
    write_plugin(tmp_path, "b.py", "beta", groups=("image",))
    write_plugin(tmp_path, "c.py", "gamma", groups=("video",))
    load_plugins([tmp_path], entry_points=False)
    assert [t.name for t in select_tasks("all")] == ["alpha", "beta", "gamma"]
    assert [t.name for t in select_tasks("image")] == ["alpha", "beta"]
    assert [t.name for t in select_tasks("gamma, zeroshot,alpha")] == ["gamma", "alpha"]


def test_unknown_selector_lists_tasks_and_groups(tmp_path):
    write_plugin(tmp_path, "a.py", "alpha", groups=("image",))
    load_plugins([tmp_path], entry_points=False)
    with pytest.raises(RegistryError, match=r"'nope'.*alpha.*image"):
        select_tasks("alpha,nope")


def test_unknown_parameter_override_is_refused(tmp_path):
    write_plugin(tmp_path, "a.py", "alpha")
    (spec,) = load_plugins([tmp_path], entry_points=False).values()
    assert spec.resolve_params({"p": 2}) == {"p": 2}
    with pytest.raises(ParamError, match="no parameter 'q'"):
        spec.resolve_params({"q": 2})


def test_description_defaults_to_the_docstring_and_source_to_the_file(tmp_path):
    path = write_plugin(tmp_path, "a.py", "alpha")
    (spec,) = load_plugins([tmp_path], entry_points=False).values()
    assert spec.description == "A test task." and spec.source == str(path)


def _installed_distribution(site, package, entry_value, module_source):
    """A minimal installed package with a ``coca_bench.tasks`` entry point, as pip would leave it."""
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(textwrap.dedent(module_source))
    info = site / f"{package}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[coca_bench.tasks]\nmy_tasks = {entry_value}\n")


def test_entry_point_plugins_are_discovered(tmp_path, monkeypatch):
    _installed_distribution(
        tmp_path,
        "acme_coca_tasks",
        "acme_coca_tasks",
        """
        from coca_bench.registry import register_task

        @register_task("acme_task", groups=("acme",), dataset="d", metrics=["m"])
        def run(ctx, params):
            '''From an installed package.'''
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    tasks = load_plugins([], entry_points=True)
    assert "acme_task" in tasks and tasks["acme_task"].groups == ("acme",)


def test_broken_entry_point_is_named(tmp_path, monkeypatch):
    _installed_distribution(tmp_path, "broken_coca_tasks", "broken_coca_tasks", "import no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RegistryError, match=r"entry point 'my_tasks' \(broken_coca_tasks\) failed to import"):
        load_plugins([], entry_points=True)


def test_metric_declarations_are_checked_at_registration():
    from coca_bench.registry import MetricSpec, register_task

    with pytest.raises(RegistryError, match="aggregation='median'"):
        MetricSpec("x", aggregation="median")
    with pytest.raises(RegistryError, match=r"\['cider'\] with aggregation='task' but no aggregate="):
        register_task("t", groups=("g",), dataset="d", metrics=[MetricSpec("cider", aggregation="task")])(
            lambda c, p: 0
        )


def test_aggregate_metrics_takes_means_from_fields_and_the_rest_from_the_aggregate():
    from coca_bench.registry import MetricSpec, aggregate_metrics

    samples = [{"id": 0, "acc": 1, "label": 7}, {"id": 1, "acc": 0, "label": 7}, {"id": 2, "acc": None, "label": 3}]
    metrics = [MetricSpec("acc"), MetricSpec("classes", aggregation="task")]
    out = aggregate_metrics(metrics, lambda s, p: {"classes": len({r["label"] for r in s}), "label": 99}, samples, {})
    assert out == {"acc": 0.5, "classes": 2.0}  # null left out of the mean; "label" is not a declared metric
