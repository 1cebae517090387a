"""``report.html``: one self-contained page to look at an output folder.

Self-contained means it opens anywhere, offline, and leaks nothing: CSS is inline, charts are SVG and pictures JPEG,
both as ``data:`` URIs, there is no script, and a Content-Security-Policy forbids the page any request at all (a
``data:`` image and the inline style are all it may use). Its numbers are the ones of ``summary.csv`` and
``comparison.csv``: the same frames and the same :func:`~coca_bench.compare.compare_runs` rows.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any

from coca_bench.compare.matching import MetricComparison, compare_runs
from coca_bench.compare.render import (
    checkpoint_colours,
    compared_checkpoints,
    comparison_chart,
    comparison_frame,
    defined_rows,
    order_rows,
)
from coca_bench.fileio import atomic_write_text, canonical_json
from coca_bench.registry import TaskSpec
from coca_bench.report.media import MediaIndex, media_index
from coca_bench.report.samples import samples_section
from coca_bench.results import (
    ResultStore,
    best_checkpoints,
    format_number,
    ordered_metric_order,
    record_groups,
    results_frame,
    summary_columns,
    summary_frame,
    summary_notes,
    undefined_columns,
)

REPORT_HTML = "report.html"
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
:root { --better: #2a9d8f; --worse: #e76f51; --muted: #6c757d; --line: #dee2e6; --head: #f1f3f5; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #212529;
       margin: 0; background: #fff; }
header { background: #1d3557; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; opacity: .85; }
main { padding: 8px 28px 40px; max-width: 1500px; }
nav { margin: 12px 0; }
nav a { display: inline-block; margin: 0 10px 4px 0; color: #1d3557; }
h2 { border-bottom: 2px solid #1d3557; padding-bottom: 4px; margin-top: 34px; }
h3 { margin: 22px 0 8px; font-size: 16px; }
h4 { margin: 14px 0 6px; font-size: 14px; font-weight: 600; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: right; vertical-align: top; }
table.summary td, table.comparison td { white-space: nowrap; }
th { background: var(--head); font-weight: 600; }
td:first-child, th:first-child { text-align: left; }
.summary-grid { display: grid; gap: 14px 18px; align-items: start;
                grid-template-columns: repeat(auto-fill, minmax(min(100%, var(--card, 300px)), 1fr)); }
.summary-card { overflow-x: auto; }
table.summary { width: 100%; font-size: 13px; }
table.summary caption { text-align: left; padding: 0 0 3px; }
table.summary caption a { font-weight: 700; color: #1d3557; }
table.summary caption .groups { color: var(--muted); font-size: 11.5px; margin-left: 6px; }
table.summary th, table.summary td { padding: 3px 7px; }
table.summary th { font-size: 12px; white-space: nowrap; vertical-align: bottom; }
table.summary th .role { font-weight: 400; color: var(--muted); font-size: 11px; }
table.summary tr.headline td:first-child { font-weight: 700; }
td.undefined { color: var(--muted); }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px;
          vertical-align: -1px; }
td.best { background: #d8f3dc; font-weight: 700; }
td.best::before { content: "★ "; color: #2d6a4f; }
td.better { color: var(--better); font-weight: 700; }
td.worse { color: var(--worse); font-weight: 700; }
table.plain td { text-align: left; }
table.prov td, table.prov th { text-align: left; font-size: 12.5px; }
code, .hash { font: 12px/1.3 ui-monospace, "DejaVu Sans Mono", monospace; word-break: break-all; }
.muted { color: var(--muted); }
.legend { color: var(--muted); font-size: 12.5px; margin: 6px 0; }
.notes li { color: #9c4221; }
.chart { max-width: 100%; border: 1px solid var(--line); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { display: flex; gap: 10px; border: 1px solid var(--line); border-radius: 6px; padding: 8px;
        width: 560px; max-width: 100%; background: #fcfcfd; }
.card.wide { width: 760px; }
.card-body { flex: 1; min-width: 0; font-size: 13px; }
.card ul, .card ol { margin: 2px 0 6px; padding-left: 18px; }
.thumb { width: 160px; height: auto; align-self: flex-start; border-radius: 3px; }
.strip { max-width: 320px; height: auto; align-self: flex-start; border-radius: 3px; }
.placeholder { width: 160px; min-height: 120px; background: repeating-linear-gradient(45deg, #eee, #eee 8px,
               #f8f9fa 8px, #f8f9fa 16px); color: var(--muted); display: flex; flex-direction: column;
               align-items: center; justify-content: center; text-align: center; font-size: 12px; padding: 6px;
               border-radius: 3px; word-break: break-all; }
.sid { font: 11px ui-monospace, monospace; color: var(--muted); }
.label { font-size: 11px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin-top: 4px; }
.ckpt { display: inline-block; background: #e7ecf5; color: #1d3557; border-radius: 3px; padding: 0 5px;
        font: 600 11.5px ui-monospace, monospace; }
.score { color: var(--muted); font-size: 12px; }
.label .ckpt { text-transform: none; letter-spacing: 0; }
li.hit { font-weight: 600; }
span.hit, .better-text { color: var(--better); }
.wrong { color: var(--worse); }
.question { font-weight: 600; }
details summary { cursor: pointer; color: #1d3557; }
pre { margin: 4px 0; white-space: pre-wrap; font-size: 12px; max-height: 320px; overflow: auto; }
"""


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def _arrow(higher_is_better: bool) -> str:
    return "↑" if higher_is_better else "↓"


def _anchor(task: str) -> str:
    return "task-" + "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in task)


# --------------------------------------------------------------------------- summary


def _checkpoint_head(checkpoint: str, colours: Mapping[str, str], baseline: str | None) -> str:
    """A column head with the checkpoint's chart colour, so that the table and the chart read together."""
    colour = colours.get(checkpoint)
    swatch = f'<span class="swatch" style="background:{colour}"></span>' if colour else ""
    role = '<br><span class="role">baseline</span>' if checkpoint == baseline else ""
    return f'<th data-checkpoint="{escape(checkpoint)}">{swatch}{escape(checkpoint)}{role}</th>'


def _summary_section(
    records: Sequence[dict],
    metric_order: Mapping[str, Sequence[str]],
    checkpoints: Sequence[str],
    colours: Mapping[str, str],
    baseline: str | None,
) -> str:
    """One small table per task (metrics down, checkpoints across), in a grid that wraps to the window: a summary
    of 14 tasks and 80 metrics fits a 1,400-pixel page instead of running 80 columns off its side. Tasks come in
    ``metric_order``'s order (headline tasks first, grouped); a metric undefined for every checkpoint is left out
    and named below."""
    results = results_frame(records)
    columns = summary_columns(results, metric_order)
    if not columns:
        return '<section id="summary"><h2>Summary</h2><p>No results yet.</p></section>'
    values, ran = summary_frame(results, metric_order)
    undefined = undefined_columns(values)
    directions = {f"{t}/{m}": up for t, m, up in columns}
    best = best_checkpoints(values, directions)
    groups = record_groups(records)
    by_task: dict[str, list[tuple[str, bool]]] = {}
    for task, metric, up in columns:
        if f"{task}/{metric}" not in undefined:
            by_task.setdefault(task, []).append((metric, up))
    heads = "".join(_checkpoint_head(c, colours, baseline) for c in checkpoints)
    cards = []
    for task, metrics in by_task.items():
        body = []
        for index, (metric, up) in enumerate(metrics):
            column = f"{task}/{metric}"
            cells = []
            for checkpoint in checkpoints:
                if not ran.at[checkpoint, column]:
                    cells.append('<td title="not run"></td>')
                    continue
                value = values.at[checkpoint, column]
                if math.isnan(value):
                    cells.append('<td class="undefined" title="undefined for this run">–</td>')
                elif checkpoint in best.get(column, ()):
                    cells.append(f'<td class="best" title="best on {escape(column)}">{format_number(value)}</td>')
                else:
                    cells.append(f"<td>{format_number(float(value))}</td>")
            css = ' class="headline"' if index == 0 else ""
            direction = "higher" if up else "lower"
            body.append(
                f'<tr{css} data-metric="{escape(metric)}"><td title="{direction} is better">{escape(metric)} '
                f"{_arrow(up)}</td>{''.join(cells)}</tr>"
            )
        label = " · ".join(groups.get(task, ()))
        cards.append(
            f'<div class="summary-card" data-task="{escape(task)}"><table class="summary">'
            f'<caption><a href="#{_anchor(task)}">{escape(task)}</a><span class="groups">{escape(label)}</span>'
            f"</caption><thead><tr><th>metric</th>{heads}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
        )
    by_checkpoint: dict[str, dict[str, dict]] = {}
    for record in records:
        by_checkpoint.setdefault(record["checkpoint"]["name"], {})[record["task"]["name"]] = record
    notes = summary_notes(by_checkpoint)
    notes_html = (
        '<p><b>Not like for like</b> (compare with care):</p><ul class="notes">'
        + "".join(f"<li>{escape(n)}</li>" for n in notes)
        + "</ul>"
        if notes
        else ""
    )
    left_out = (
        f'<p class="legend">Left out, undefined for every checkpoint: {escape(", ".join(undefined))}.</p>'
        if undefined
        else ""
    )
    # the width a card needs (8 px a character of 13 px text, a little more than needed), so that every card fits
    metric_px = 40 + 8 * max(len(metric) + 2 for metrics in by_task.values() for metric, _ in metrics)
    card_px = metric_px + sum(max(96, 34 + 8 * len(c)) for c in checkpoints)
    return (
        '<section id="summary"><h2>Summary</h2>'
        '<p class="legend">One table per task, headline tasks first; the first metric (bold) is the task\'s '
        "headline. ↑ higher is better, ↓ lower is better; ★ the best checkpoint on that metric (where two or more "
        "have a value; ties share it); empty: not run; –: undefined for that run.</p>"
        f'<div class="summary-grid" id="summary-table" style="--card: {card_px}px">{"".join(cards)}</div>'
        f"{left_out}{notes_html}</section>"
    )


# --------------------------------------------------------------------------- comparison


_CHART_LEGEND = (
    "Bars: the delta against the baseline <b>{baseline}</b>, sign-flipped for ↓ metrics (marked “flipped”) so that "
    "right is better in every panel; whiskers: the {confidence:.0%} paired bootstrap interval ({n} resamples, pairs "
    "matched by sample id). Solid, bold and *: significant (the interval excludes 0); hollow: not significant; "
    "hatched: not like for like. Each checkpoint has one colour throughout."
)


def _overview_html(rows: Sequence[MetricComparison], checkpoints: Sequence[str], n_resamples: int) -> str:
    """The chart of ``comparison.png``, every task at a glance, as SVG."""
    rows = defined_rows(rows)
    if not rows:
        return ""
    chart = _data_uri(comparison_chart(rows, "svg", checkpoints=checkpoints), "image/svg+xml")
    legend = _CHART_LEGEND.format(baseline=escape(rows[0].baseline), confidence=rows[0].confidence, n=n_resamples)
    return (
        '<section id="comparison"><h2>Comparison</h2>'
        f'<img class="chart" src="{chart}" alt="improvement over the baseline, one panel per task">'
        f'<p class="legend">{legend} Per task below: the same panel with the table of its cells.</p></section>'
    )


def _comparison_html(rows: Sequence[MetricComparison], checkpoints: Sequence[str], n_resamples: int) -> str:
    rows = defined_rows(rows)
    if not rows:
        return '<p class="muted">Nothing to compare: only one checkpoint has this task (or not the baseline).</p>'
    frame = comparison_frame(rows)
    task = rows[0].task
    chart = _data_uri(comparison_chart(rows, "svg", checkpoints=checkpoints, title=False), "image/svg+xml")
    charts = f'<img class="chart" src="{chart}" alt="improvement of {escape(task)} with its intervals">'
    body = []
    for cell in frame.to_dict("records"):
        no_ci = math.isnan(cell["ci_low"])
        if no_ci:
            verdict, css = "no CI", ""
        elif cell["significant"]:
            verdict, css = ("* better", "better") if cell["significantly_better"] else ("* worse", "worse")
        else:
            verdict, css = "not significant", ""
        interval = "" if no_ci else f"[{cell['ci_low']:+.4f}, {cell['ci_high']:+.4f}]"
        body.append(
            f"<tr><td>{escape(cell['metric'])} {_arrow(cell['higher_is_better'])}</td>"
            f"<td>{escape(cell['checkpoint'])}</td><td>{cell['baseline_value']:.4f}</td><td>{cell['value']:.4f}</td>"
            f'<td>{cell["delta"]:+.4f}</td><td>{interval}</td><td class="{css}">{verdict}</td>'
            f'<td class="muted" style="text-align:left">{escape(cell["note"])}</td></tr>'
        )
    confidence = rows[0].confidence
    return (
        f"{charts}"
        f'<p class="legend">Against the baseline <b>{escape(rows[0].baseline)}</b>, with {confidence:.0%} paired '
        f"bootstrap intervals ({n_resamples} resamples, pairs matched by sample id). The bars read as in the "
        '<a href="#comparison">chart of every task</a>: right is better (↓ metrics flipped), solid and * significant. '
        "In the table the delta keeps its sign; green: significantly better, red: significantly worse.</p>"
        '<div class="scroll"><table class="comparison"><thead><tr><th>metric</th><th>checkpoint</th>'
        "<th>baseline</th><th>value</th><th>delta</th>"
        f"<th>{confidence:.0%} CI</th><th>significant</th><th>note</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


# --------------------------------------------------------------------------- skips and provenance


def _skipped_html(records: Sequence[dict]) -> str:
    parts = []
    for record in records:
        skipped = record.get("skipped") or []
        if not skipped:
            continue
        items = "".join(
            f"<li><code>{escape(str(s.get('id')))}</code>: {escape(str(s.get('reason')))}</li>" for s in skipped[:50]
        )
        more = f"<li>… {len(skipped) - 50} more in the result JSON</li>" if len(skipped) > 50 else ""
        parts.append(
            f'<h4><span class="ckpt">{escape(record["checkpoint"]["name"])}</span> {len(skipped)} skipped</h4>'
            f"<ul>{items}{more}</ul>"
        )
    return "".join(parts) or '<p class="muted">None: every sample was read and scored.</p>'


def _warnings_html(records: Sequence[dict]) -> str:
    """What the runs said about themselves: warnings (collapsed embeddings) and metrics left out, with why."""
    items = [
        f'<li><span class="ckpt">{escape(r["checkpoint"]["name"])}</span> {escape(str(w))}</li>'
        for r in records
        for w in r.get("warnings") or []
    ]
    items += [
        f'<li><span class="ckpt">{escape(r["checkpoint"]["name"])}</span> {escape(m)} not computed: '
        f"{escape(str(why))}</li>"
        for r in records
        for m, why in (r.get("not_computed") or {}).items()
    ]
    return f'<ul class="notes">{"".join(items)}</ul>' if items else ""


def _details(title: str, value: Any) -> str:
    text = json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False)
    return f"<details><summary>{escape(title)}</summary><pre>{escape(text)}</pre></details>"


def _provenance_html(records: Sequence[dict]) -> str:
    rows = []
    for record in records:
        run = record.get("run") or {}
        settings = run.get("settings") or {}
        config = record.get("config") or {}
        dataset = record.get("dataset") or {}
        checkpoint = record.get("checkpoint") or {}
        wall = run.get("wall_time_s")
        when = f"{run.get('finished_at') or ''}" + (f" ({float(wall):.1f} s)" if wall is not None else "")
        rows.append(
            "<tr>"
            f'<td><span class="ckpt">{escape(str(checkpoint.get("name")))}</span><br>'
            f"<code>{escape(str(checkpoint.get('spec')))}</code><br>sha256 "
            f'<span class="hash">{escape(str(checkpoint.get("sha256")))}</span></td>'
            f"<td>{escape(str(dataset.get('name')))} / {escape(str(dataset.get('split')))}<br>fingerprint "
            f'<span class="hash">{escape(str(dataset.get("fingerprint")))}</span></td>'
            f"<td>precision {escape(str(settings.get('precision')))}, seed {escape(str(settings.get('seed')))}, "
            f"limit {escape(str(settings.get('limit') or 'none'))}, strict {escape(str(settings.get('strict')))}, "
            f"device {escape(str(settings.get('device')))}<br>"
            + _details(f"{len(config.get('params') or {})} parameters", config.get("params") or {})
            + (_details("task-reported config", config["extra"]) if config.get("extra") else "")
            + _details("versions", record.get("versions") or {})
            + _details(
                "run",
                {k: run.get(k) for k in ("argv", "model_fingerprint", "preprocess_fingerprint", "code_fingerprint")},
            )
            + f"</td><td>git <code>{escape(str(record.get('git_commit')))}</code><br>key "
            f'<span class="hash">{escape(str(record.get("key")))}</span><br>{escape(when)}</td>'
            "</tr>"
        )
    return (
        '<div class="scroll"><table class="prov"><thead><tr><th>checkpoint</th><th>dataset</th>'
        "<th>settings, parameters, versions</th><th>commit, result key, finished</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


# --------------------------------------------------------------------------- the page


def _task_section(
    task: str,
    records: Sequence[dict],
    rows: Sequence[MetricComparison],
    spec: TaskSpec | None,
    store: ResultStore,
    media_cache: dict[str, MediaIndex],
    n_resamples: int,
    checkpoints: Sequence[str] = (),
) -> str:
    first = records[0]
    description = (spec.description if spec is not None else first["task"].get("description")) or ""
    declared = first["task"].get("metrics") or []
    metrics = ", ".join(
        f"{escape(m['name'])} {_arrow(bool(m.get('higher_is_better', True)))}" for m in declared if "name" in m
    )
    samples = {r["checkpoint"]["name"]: {str(s.get("id")): s for s in store.samples(r["checkpoint"]["name"], task)}
               for r in records}  # fmt: skip
    key = canonical_json([task, (first.get("dataset") or {}).get("root"), (first.get("config") or {}).get("params")])
    if key not in media_cache:
        media_cache[key] = media_index(first, spec)
    return (
        f'<section class="task" id="{_anchor(task)}"><h2>{escape(task)}</h2>'
        f'<p>{escape(description)}</p><p class="legend">Metrics: {metrics}. '
        f"{len(records)} checkpoint(s).</p>{_warnings_html(records)}"
        f"<h3>Comparison</h3>{_comparison_html(rows, checkpoints, n_resamples)}"
        f"<h3>Samples</h3>{samples_section(samples, media_cache[key], spec.view if spec is not None else None)}"
        f"<h3>Skipped samples</h3>{_skipped_html(records)}"
        f"<h3>Provenance</h3>{_provenance_html(records)}</section>"
    )


def build_report(
    output_dir: Path | str,
    rows: Sequence[MetricComparison],
    specs: Mapping[str, TaskSpec] | None = None,
    *,
    n_resamples: int = 1000,
    generated_at: datetime | None = None,
) -> str:
    """The HTML text of the report of ``output_dir``, with ``rows`` from :func:`compare_runs` on that folder."""
    output_dir = Path(output_dir)
    store = ResultStore(output_dir)
    records = store.records()
    # tasks in reading order (headline tasks first, grouped as `--tasks list` lists them), everywhere on the page
    metric_order = ordered_metric_order(records, {n: [m.name for m in s.metrics] for n, s in (specs or {}).items()})
    groups = record_groups(records)
    rows = order_rows(rows, {task: groups[task] for task in metric_order})  # ties broken as in the summary
    by_task: dict[str, list[dict]] = {}
    for record in records:
        by_task.setdefault(record["task"]["name"], []).append(record)
    order = list(metric_order)
    baseline = rows[0].baseline if rows else None
    for task_records in by_task.values():  # the baseline's result first, then the others by name
        task_records.sort(key=lambda r: (r["checkpoint"]["name"] != baseline, r["checkpoint"]["name"]))
    checkpoints = sorted({r["checkpoint"]["name"] for r in records})
    compared = compared_checkpoints(rows)  # the chart's colour order; the baseline first in every table
    columns = ([baseline] if baseline in checkpoints else []) + [c for c in checkpoints if c != baseline]
    moment = (generated_at or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    media_cache: dict[str, MediaIndex] = {}
    sections = [
        _task_section(
            task,
            by_task[task],
            [r for r in rows if r.task == task],
            (specs or {}).get(task),
            store,
            media_cache,
            n_resamples,
            compared,
        )  # fmt: skip
        for task in order
    ]
    nav = "".join(f'<a href="#{_anchor(t)}">{escape(t)}</a>' for t in order)
    overview_link = '<a href="#comparison">Comparison</a>' if defined_rows(rows) else ""
    subtitle = (
        f"{escape(str(output_dir))} · {len(checkpoints)} checkpoint(s), {len(order)} task(s)"
        + (f" · baseline {escape(baseline)}" if baseline else "")
        + f" · generated {moment}"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>coca-bench report: {escape(output_dir.name or str(output_dir))}</title>"
        f"<style>{CSS}</style></head><body>"
        f"<header><h1>coca-bench report</h1><p>{subtitle}</p></header><main>"
        f'<nav><a href="#summary">Summary</a>{overview_link}{nav}</nav>'
        f"{_summary_section(records, metric_order, columns, checkpoint_colours(compared), baseline)}"
        f"{_overview_html(rows, compared, n_resamples)}{''.join(sections)}"
        "</main></body></html>\n"
    )


def write_report(
    output_dir: Path | str,
    specs: Mapping[str, TaskSpec] | None = None,
    *,
    baseline: str | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
    rows: Sequence[MetricComparison] | None = None,
) -> Path:
    """Write ``output_dir/report.html``; ``rows`` reuses a comparison already computed (``compare`` passes its own),
    otherwise it is computed here with ``specs``' aggregates, like ``compare`` does (or read from its cache)."""
    output_dir = Path(output_dir)
    if rows is None:
        rows = compare_runs(output_dir, baseline, specs, n_resamples=n_resamples, seed=seed, cache=True)
    path = output_dir / REPORT_HTML
    atomic_write_text(path, build_report(output_dir, rows, specs, n_resamples=n_resamples))
    return path


__all__ = ["CONTENT_SECURITY_POLICY", "REPORT_HTML", "build_report", "write_report"]
