"""The HTML report on a small real run (bundled tiny checkpoints, a few tasks, --limit), loaded in headless Chromium.

The browser check drives Chromium over the DevTools protocol (``coca_bench.report.browser``): console messages,
uncaught exceptions and every request arrive as events, so "no console errors" and "no network requests" are read
from the browser itself, not parsed from a log. The report also carries a Content-Security-Policy that forbids any
request, and a control test shows that the check does see requests and errors when a page makes them.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import re
import shutil
import subprocess
import sys
from html import escape
from pathlib import Path

import pytest
from browser import find_chromium, load_page
from PIL import Image
from test_frames import assert_frame_matches_json_files

from coca_bench import cli
from coca_bench.report import CONTENT_SECURITY_POLICY, REPORT_HTML, write_report
from coca_bench.results import (
    CheckpointInfo,
    ResultStore,
    RunRecordInputs,
    best_checkpoints,
    build_record,
    load_results,
    summary_columns,
    summary_frame,
)
from coca_bench.runner import RunConfig, load_task_registry, run_suite
from coca_bench.settings import RunSettings

CHECKPOINTS = ("tiny-random-s0", "tiny-random-s1")
CAPTIONING = shutil.which("java") is not None  # captioning metrics need Java; CI has it
needs_chromium = pytest.mark.skipif(
    find_chromium() is None, reason="no chromium binary on PATH (apt-get install chromium; .ci/run installs it)"
)
PAGE_FACTS = """JSON.stringify({
  cards: document.querySelectorAll('#summary-table table.summary').length,
  checkpoints: [...document.querySelectorAll('#summary-table table th[data-checkpoint]')].map(h => h.dataset.checkpoint),
  images: document.images.length,
  broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length,
  tasks: document.querySelectorAll('section.task').length,
})"""


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two bundled checkpoints on fast tasks with --limit 4; captioning (slow: Java) for the first one only, which
    also gives the report a task with nothing to compare."""
    output = tmp_path_factory.mktemp("report_run")
    settings = RunSettings(device="cpu", limit=4, progress=False, num_workers=0)
    common = ["imagenet_zeroshot", "coco_retrieval", "vqav2", "kinetics_zeroshot"]
    params = ["templates=simple", "num_candidates=16"]
    first = common + (["coco_captioning"] if CAPTIONING else [])
    first_params = params + (["strategy=greedy", "coco_captioning.max_new_tokens=6"] if CAPTIONING else [])
    run_suite(RunConfig(tasks=",".join(first), checkpoints=[CHECKPOINTS[0]], output=output, params=first_params,
                        settings=settings))  # fmt: skip
    run_suite(RunConfig(tasks=",".join(common), checkpoints=[CHECKPOINTS[1]], output=output, params=params,
                        settings=settings))  # fmt: skip
    return output


@pytest.fixture(scope="module")
def report(real_run: Path) -> Path:
    return write_report(real_run, load_task_registry(), n_resamples=200)


def test_load_results_matches_the_json_files_of_a_real_run(real_run: Path) -> None:
    frame = assert_frame_matches_json_files(real_run)
    assert set(frame["checkpoint"]) == set(CHECKPOINTS)


def test_report_holds_summary_comparisons_samples_skips_and_provenance(report: Path, real_run: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert f'content="{CONTENT_SECURITY_POLICY}"' in html
    assert not re.findall(r'(?:src|href)="(?!data:|#)', html), "everything is inline or a data: URI"
    assert "<script" not in html
    records = ResultStore(real_run).records()
    # summary: one table per task, a column per checkpoint (the baseline first); every best cell marked, only those
    assert re.findall(r'<th data-checkpoint="([^"]+)">', html)[: len(CHECKPOINTS)] == list(CHECKPOINTS)
    results = load_results(real_run)
    values, _ = summary_frame(results, None)
    directions = {f"{t}/{m}": up for t, m, up in summary_columns(results)}
    assert html.count('<td class="best"') == sum(len(v) for v in best_checkpoints(values, directions).values())
    assert "mean_rank ↓" in html or "median_rank ↓" in html  # direction of a lower-is-better metric
    # per task: a comparison chart with its intervals, the significance verdicts
    for task in ("imagenet_zeroshot", "coco_retrieval", "vqav2", "kinetics_zeroshot"):
        section = html.split(f'id="task-{task}"', 1)[1].split('<section class="task"', 1)[0]
        assert 'src="data:image/svg+xml;base64,' in section and "95% CI" in section
        assert "not significant" in section or "* better" in section or "* worse" in section
    store = ResultStore(real_run)
    # VQA: the question, the human answers and each checkpoint's prediction
    vqa = store.samples(CHECKPOINTS[0], "vqav2")[0]
    vqa_section = html.split('id="task-vqav2"', 1)[1]
    assert "Q: " in vqa_section and "human answers" in vqa_section and escape(vqa["answer"]) in vqa_section
    # retrieval: a query image and its top 5 captions in words
    retrieval = html.split('id="task-coco_retrieval"', 1)[1].split('<section class="task"', 1)[0]
    assert retrieval.count("top 5") >= 2 and 'class="thumb"' in retrieval and "caption #" not in retrieval
    # classification: mistakes with class names; video: frame strips
    kinetics = html.split('id="task-kinetics_zeroshot"', 1)[1].split('<section class="task"', 1)[0]
    assert "mistakes" in kinetics and 'class="strip"' in kinetics
    if CAPTIONING:  # the generated caption beside the references, and a task that only one checkpoint ran
        caption = store.samples(CHECKPOINTS[0], "coco_captioning")[0]
        captioning = html.split('id="task-coco_captioning"', 1)[1].split('<section class="task"', 1)[0]
        assert "references" in captioning and "Nothing to compare" in captioning
        assert escape(caption["caption"]) in captioning
    # provenance of every result
    for record in records:
        for value in (record["checkpoint"]["sha256"], record["dataset"]["fingerprint"], record["key"]):
            assert value in html
    assert str(records[0]["git_commit"]) in html and "versions" in html


def test_report_survives_a_moved_dataset_and_lists_skipped_samples(real_run: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(real_run, moved)
    for path in moved.glob("*/*.json"):
        record = json.loads(path.read_text())
        if "dataset" not in record:
            continue
        record["dataset"]["root"] = str(tmp_path / "gone")  # the dataset is not where the run read it
        if path.name == "coco_retrieval.json" and path.parent.name == CHECKPOINTS[1]:
            record["skipped"] = [{"id": "123", "reason": "unreadable JPEG: truncated file"}]
        path.write_text(json.dumps(record))
    html = write_report(moved, load_task_registry(), n_resamples=50).read_text(encoding="utf-8")
    assert "no picture" in html and 'class="thumb"' not in html and "dataset not readable at" in html
    assert "unreadable JPEG: truncated file" in html and "1 skipped" in html


def test_compare_and_report_commands_print_the_report_path(real_run: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "results"
    shutil.copytree(real_run, output)
    assert cli.main(["report", "--output", str(output), "--resamples", "50"]) == 0
    assert f"HTML report: {output / REPORT_HTML}" in capsys.readouterr().out
    (output / REPORT_HTML).unlink()
    assert cli.main(["compare", "--output", str(output), "--resamples", "50"]) == 0
    assert f"HTML report: {output / REPORT_HTML}" in capsys.readouterr().out and (output / REPORT_HTML).is_file()
    run = ["--tasks", "imagenet_zeroshot", "--checkpoint", CHECKPOINTS[0], "--limit", "4", "--param",
           "templates=simple", "--output", str(output), "--no-progress", "--device", "cpu"]  # fmt: skip
    assert cli.main(run) == 0  # the stored result is reused; the run says how to make the report
    assert f"python run_suite.py report --output {output}" in capsys.readouterr().out
    assert cli.main(["report", "--output", str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.startswith("error: --output")


@needs_chromium
def test_report_loads_in_headless_chromium_without_errors_or_requests(report: Path) -> None:
    page = load_page(report, evaluate=PAGE_FACTS)
    assert page.console_errors == []
    assert page.outside_requests == [] and page.requests[0] == page.url
    facts = json.loads(page.evaluated)
    assert facts["cards"] == 4 + CAPTIONING and facts["checkpoints"][: len(CHECKPOINTS)] == list(CHECKPOINTS)
    assert facts["tasks"] == 4 + CAPTIONING and facts["images"] > 10 and facts["broken"] == 0
    screenshot = Image.open(io.BytesIO(page.screenshot)).convert("RGB")
    assert screenshot.size == (1280, 900)
    colours = screenshot.getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 20, "the screenshot is blank (or nearly one colour)"
    assert screenshot.getextrema() != ((255, 255), (255, 255), (255, 255))


@needs_chromium
def test_the_browser_check_sees_requests_and_console_errors(report: Path, tmp_path: Path) -> None:
    """Controls: a page that reaches out is caught, and the report's policy blocks what an injected tag would fetch."""
    leaky = tmp_path / "leaky.html"
    leaky.write_text(
        '<!DOCTYPE html><html><body><img src="http://coca-bench.invalid/pixel.png">'
        '<script>console.error("boom")</script></body></html>'
    )
    page = load_page(leaky)
    assert "http://coca-bench.invalid/pixel.png" in page.outside_requests
    assert any("boom" in e for e in page.console_errors)
    tampered = tmp_path / "tampered.html"
    html = report.read_text(encoding="utf-8")
    tampered.write_text(html.replace("</main>", '<img src="https://coca-bench.invalid/x.png"></main>'))
    blocked = load_page(tampered)
    assert any("Content Security Policy" in e for e in blocked.console_errors), blocked.console_errors


# --------------------------------------------------------------------------- the layout of the default run's report

DEFAULT_RUN = ("demo", "demo-early")  # the default run's checkpoints; demo-early is its baseline
WINDOW = 1400
LAYOUT_FACTS = """JSON.stringify({
  window: window.innerWidth,
  page: document.documentElement.scrollWidth,
  tables: document.querySelectorAll('#summary table').length,
  right: Math.max(...[...document.querySelectorAll('#summary table, #summary img')]
                  .map(e => e.getBoundingClientRect().right)),
  scrolled: [...document.querySelectorAll('#summary *')].filter(e => e.scrollWidth > e.clientWidth + 1)
                  .map(e => e.className || e.tagName),
})"""


@pytest.fixture(scope="module")
def default_like_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every registered task on the default run's two checkpoints, stored as the runner stores them, with made-up
    numbers and no per-sample records: the shape of the default run's report without its minutes of running. As on
    the mini data (3 classes), acc5 and what is built on it are undefined for both checkpoints."""
    output = tmp_path_factory.mktemp("default_like_run")
    rng = random.Random(0)
    settings = RunSettings(device="cpu").as_dict()
    for name in DEFAULT_RUN:
        checkpoint = CheckpointInfo(name, name, (name.encode().hex() * 64)[:64])
        for spec in load_task_registry().values():
            metrics = {
                m.name: math.nan if "5" in m.name and "recall" not in m.name else rng.random() if m.higher_is_better
                else rng.uniform(1.0, 40.0)
                for m in spec.metrics
            }  # fmt: skip
            inputs = RunRecordInputs(
                key=f"k-{name}-{spec.name}", checkpoint=checkpoint, dataset_dir=output / "no_data" / spec.dataset,
                dataset_fingerprint="fp", annotation_files=[], splits=["test"], params=spec.resolve_params(),
                key_material={}, run={"settings": settings, "wall_time_s": 1.0, "argv": []},
            )  # fmt: skip
            ResultStore(output).write(checkpoint, build_record(spec, inputs, metrics, 0, {}, []), [])
    return output


@pytest.fixture(scope="module")
def default_like_report(default_like_run: Path) -> Path:
    return write_report(default_like_run, load_task_registry(), baseline="demo-early", n_resamples=50)


def test_summary_lists_tasks_as_tasks_list_does_and_leaves_out_undefined_metrics(
    default_like_run: Path, default_like_report: Path
) -> None:
    from coca_bench.results import task_order, write_summary

    html = default_like_report.read_text(encoding="utf-8")
    summary = html.split('<section id="summary">', 1)[1].split("</section>", 1)[0]
    specs = load_task_registry()
    listed = [line.split()[0] for line in cli.format_task_list().splitlines()]
    assert listed == task_order({name: spec.groups for name, spec in specs.items()})  # headline tasks first, grouped
    assert re.findall(r'<div class="summary-card" data-task="([^"]+)"', summary) == listed
    for task in listed:  # the headline (first declared) metric on top, in bold; the baseline's column first
        card = summary.split(f'data-task="{task}"', 1)[1].split("</table>", 1)[0]
        headline = re.search(r'<tr class="headline" data-metric="([^"]+)"', card)
        assert headline is not None and headline.group(1) == escape(specs[task].metrics[0].name)
        assert re.findall(r'<th data-checkpoint="([^"]+)">', card) == ["demo-early", "demo"]
    # acc5 is undefined for every checkpoint: not a row of nan, but one line naming it
    assert 'data-metric="acc5"' not in summary and ">nan<" not in summary
    assert "Left out, undefined for every checkpoint: imagenet_zeroshot/acc5" in summary
    assert "acc5 ↑</td>" not in html and "+nan" not in html and ">nan<" not in html  # nor in the comparisons
    order = {name: [m.name for m in spec.metrics] for name, spec in specs.items()}  # as the runner passes it
    csv_path, md_path = write_summary(default_like_run, order)  # summary.md: the same order, the same line
    markdown = md_path.read_text(encoding="utf-8")
    assert markdown.index("| imagenet_zeroshot/acc1 ↑ |") < markdown.index("| kinetics_attentive_probe/acc1 ↑ |")
    assert "acc5 ↑" not in markdown and "Left out, undefined for every checkpoint: imagenet_zeroshot/acc5" in markdown
    assert "imagenet_zeroshot/acc5" in next(csv.reader(csv_path.open()))  # the CSV keeps its fixed columns
    overview = html.split('<section id="comparison">', 1)[1].split("</section>", 1)[0]
    assert overview.count('src="data:image/svg+xml;base64,') == 1  # comparison.png's chart, as SVG


@needs_chromium
def test_summary_fits_a_1400_pixel_window(default_like_report: Path) -> None:
    page = load_page(default_like_report, evaluate=LAYOUT_FACTS, width=WINDOW, height=900)
    assert page.console_errors == [] and page.outside_requests == []
    facts = json.loads(page.evaluated)
    assert facts["window"] == WINDOW and facts["page"] <= WINDOW, facts  # no horizontal scrollbar on the page
    assert facts["right"] <= WINDOW and facts["scrolled"] == [], facts  # nor one inside the summary
    assert facts["tables"] == len(load_task_registry())  # every task is there: one table each


def test_report_and_frames_modules_import_neither_torch_nor_pandas() -> None:
    """``--tasks list`` imports the results package: pandas (and torch) load only when a frame is built."""
    loaded = "2 * ('pandas' in sys.modules) + ('torch' in sys.modules)"
    code = f"import sys, coca_bench.cli, coca_bench.report; sys.exit({loaded})"
    completed = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert completed.returncode == 0
