"""Typed task parameters: a bad ``--param`` (a wrong type, a value outside its choices or its range) is one line,
refused before any model loads; settings that only a config can check are one line too."""

from __future__ import annotations

import pytest

from coca_bench.errors import CocaBenchError, SettingValueError
from coca_bench.params import Param, ParamError, declare_params, resolve_params


def test_a_number_outside_its_range_is_refused_and_the_range_is_described():
    declared = declare_params("t", {"steps": Param(100, minimum=0), "p": Param(0.9, minimum=0.0, maximum=1.0)})
    assert resolve_params("t", declared, {"steps": 0, "p": 1})["p"] == 1.0  # bounds are inclusive; an int is a float
    with pytest.raises(ParamError, match=r"steps=-1 is not allowed; it takes a number at least 0 \(default 100\)"):
        resolve_params("t", declared, {"steps": -1})
    with pytest.raises(ParamError, match=r"p=1\.5 is not allowed; it takes a number from 0 to 1"):
        resolve_params("t", declared, {"p": 1.5})
    assert declared["p"].describe() == "float = 0.9 (from 0 to 1)"
    assert Param(3, maximum=5).describe() == "int = 3 (at most 5)"


def test_an_unset_parameter_with_a_range_stays_unset_and_a_bad_default_is_a_declaration_error():
    declared = declare_params("t", {"shots": Param(None, int, minimum=1)})
    assert resolve_params("t", declared, {"shots": None}) == {"shots": None}
    with pytest.raises(ParamError, match="shots=0 is not allowed"):
        resolve_params("t", declared, {"shots": 0})
    with pytest.raises(ParamError, match="epochs=0 is not allowed"):
        declare_params("t", {"epochs": Param(0, minimum=1)})


@pytest.mark.parametrize(
    ("task", "param", "expected"),
    [
        ("snli_ve", "min_steps=-1", "'snli_ve': parameter min_steps=-1 is not allowed; it takes a number at least 0"),
        ("coco_captioning", "num_beams=0", "'coco_captioning': parameter num_beams=0 is not allowed"),
        ("coco_captioning", "top_p=2", "parameter top_p=2.0 is not allowed; it takes a number from 0 to 1"),
        ("kinetics_zeroshot", "num_frames=0", "'kinetics_zeroshot': parameter num_frames=0 is not allowed"),
        ("linear_probe", "max_iter=0", "'linear_probe': parameter max_iter=0 is not allowed"),
    ],
)
def test_a_parameter_out_of_range_is_one_line_before_any_checkpoint_loads(tmp_path, capsys, monkeypatch, task, param,
                                                                          expected):  # fmt: skip
    from coca_bench import runner
    from coca_bench.cli import main

    loaded: list[str] = []
    monkeypatch.setattr(runner, "_load_bundled_model", lambda spec, device: loaded.append(spec))
    assert main(["--tasks", task, "--param", param, "--output", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and len(err.splitlines()) == 1, err
    assert loaded == []


def test_settings_only_a_config_checks_are_user_errors_too():
    """Beyond the parameter ranges (lr must be positive, not only non-negative): one line, not a traceback."""
    from coca_bench.model.generation import GenerationConfig
    from coca_bench.probes.config import AttentiveProbeConfig

    for make in (lambda: AttentiveProbeConfig(lr=0.0), lambda: GenerationConfig(strategy="top_p", top_p=0.0)):
        with pytest.raises(SettingValueError) as raised:
            make()
        assert isinstance(raised.value, CocaBenchError) and isinstance(raised.value, ValueError)
