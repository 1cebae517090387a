"""Published figures beside a run: the CoCa paper's tables and open_clip's measured results (``figures.toml``).

A figure stands beside a stored result only where both measure the same thing. A result is *not comparable*, with
every reason said, when the figure's protocol can never be matched (the paper fine-tunes where coca-bench freezes),
when the run used ``--limit``, when it ran on the bundled mini datasets, when its task parameters differ from the
figure's (the 1k-A MSR-VTT split against the paper's full split), or when it covers another number of samples than
the figure's split. Nothing here imports torch.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from coca_bench.errors import CocaBenchError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

FIGURES_FILE = Path(__file__).with_name("figures.toml")
PERCENT = 100.0  # every published figure is printed x 100 of coca-bench's fraction (accuracy, recall, CIDEr)


class PublishedError(CocaBenchError, ValueError):
    """The published-figures file is malformed, or a name asked for is not in it."""


@dataclass(frozen=True)
class PublishedFigure:
    """One published number, in its source's units (percent), with what it measured."""

    model: str
    task: str
    metric: str
    value: float
    source: str
    table: str
    split: str
    protocol: str
    samples: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    caveat: str | None = None
    never_comparable: str | None = None

    @property
    def column(self) -> str:
        return f"{self.task}/{self.metric}"


@dataclass(frozen=True)
class PublishedView:
    """One of the paper's tables: (label, task/metric) columns and, optionally, their average's label."""

    title: str
    columns: tuple[tuple[str, str], ...]
    average: str | None = None


@dataclass(frozen=True)
class Published:
    models: Mapping[str, str]  # name -> label
    sources: Mapping[str, str]  # name -> "title (url)"
    figures: tuple[PublishedFigure, ...]
    views: tuple[PublishedView, ...]

    def select(self, names: str) -> list[str]:
        """``all`` or comma-separated model names, checked."""
        wanted = list(self.models) if names.strip() == "all" else [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in self.models]
        if unknown or not wanted:
            raise PublishedError(
                f"--published {names!r} names no published model {unknown or ''}; choose `all` or from "
                f"{', '.join(self.models)} ({FIGURES_FILE.name})."
            )
        return wanted


def _require(table: Mapping[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in table:
        raise PublishedError(f"{FIGURES_FILE}: {where} has no {key!r}; add it.")
    value = table[key]
    if not isinstance(value, kind):
        raise PublishedError(f"{FIGURES_FILE}: {where}.{key} must be {kind}, got {value!r}.")
    return value


def parse_published(data: Mapping[str, Any]) -> Published:
    """The figures of a parsed ``figures.toml``, every reference between its sections checked."""
    sources = {
        name: f"{_require(s, 'title', f'sources.{name}', str)} ({s.get('url', '')})"
        for name, s in data.get("sources", {}).items()
    }
    models, model_source = {}, {}
    for name, model in data.get("models", {}).items():
        models[name] = _require(model, "label", f"models.{name}", str)
        model_source[name] = _require(model, "source", f"models.{name}", str)
        if model_source[name] not in sources:
            raise PublishedError(f"{FIGURES_FILE}: models.{name}.source {model_source[name]!r} is not a source.")
    benchmarks = data.get("benchmarks", {})
    figures: list[PublishedFigure] = []
    for number, table in enumerate(data.get("figures", []), start=1):
        where = f"figures[{number}] ({table.get('table', '?')})"
        columns = _require(table, "columns", where, list)
        splits = table.get("splits") or [None] * len(columns)
        params = table.get("params") or [{}] * len(columns)
        if len(splits) != len(columns) or len(params) != len(columns):
            raise PublishedError(
                f"{FIGURES_FILE}: {where} has {len(columns)} columns but other lengths of splits/params."
            )
        for row in _require(table, "rows", where, list):
            model, values = row[0], row[1:]
            if model not in models:
                raise PublishedError(f"{FIGURES_FILE}: {where} has a row for {model!r}, which is not in [models].")
            if len(values) != len(columns):
                raise PublishedError(f"{FIGURES_FILE}: {where} row {model!r} has {len(values)} values for {len(columns)} columns.")  # fmt: skip
            for column, value, split, extra in zip(columns, values, splits, params):
                task, _, metric = column.partition("/")
                if task not in benchmarks:
                    raise PublishedError(f"{FIGURES_FILE}: {where} column {column!r}: no [benchmarks.{task}].")
                bench = benchmarks[task]
                source = table.get("source", model_source[model])
                if source not in sources:
                    raise PublishedError(f"{FIGURES_FILE}: {where}.source {source!r} is not a source.")
                figures.append(
                    PublishedFigure(
                        model=model, task=task, metric=metric, value=float(value), source=sources[source],
                        table=_require(table, "table", where, str), split=split or bench["split"],
                        protocol=bench["protocol"], samples=None if split else bench.get("samples"),
                        params={**bench.get("params", {}), **extra}, caveat=bench.get("caveat"),
                        never_comparable=bench.get("not_comparable"),
                    )
                )  # fmt: skip
    views = tuple(
        PublishedView(v["title"], tuple((label, column) for label, column in v["columns"]), v.get("average"))
        for v in data.get("views", [])
    )
    return Published(models=models, sources=sources, figures=tuple(figures), views=views)


@lru_cache(maxsize=1)
def published() -> Published:
    """The figures shipped in ``figures.toml``."""
    with open(FIGURES_FILE, "rb") as handle:
        try:
            data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise PublishedError(f"{FIGURES_FILE} is not valid TOML: {exc}.") from None
    return parse_published(data)


def is_bundled_minidata(data_root: str | Path | None) -> bool:
    """Whether a result's data root is coca-bench's generated mini data (``<cache>/minidata/v<N>-seed<S>``)."""
    if not data_root:
        return False
    root = Path(data_root)
    if root.parent.name == "minidata" and root.name.startswith("v") and "-seed" in root.name:
        return True
    readme = root / "README.md"
    return (
        (root / "ground_truth.json").is_file()
        and readme.is_file()
        and readme.read_text(encoding="utf-8", errors="replace").startswith("# coca-bench mini datasets")
    )


def not_comparable_reasons(figure: PublishedFigure, record: Mapping[str, Any]) -> list[str]:
    """Why ``record`` does not measure what ``figure`` measured; empty when it does."""
    reasons = [figure.never_comparable] if figure.never_comparable else []
    limit = ((record.get("run") or {}).get("settings") or {}).get("limit")
    if limit is not None:
        reasons.append(f"a --limit {limit} run")
    dataset = record.get("dataset") or {}
    if is_bundled_minidata(dataset.get("data_root")):
        reasons.append("the bundled mini dataset, not the benchmark's")
    params = (record.get("config") or {}).get("params") or {}
    for name, wanted in figure.params.items():
        if params.get(name) != wanted:
            reasons.append(f"{name}={params.get(name)!r}, where the figure used {wanted!r}")
    samples = record.get("num_samples")
    if figure.samples is not None and samples != figure.samples:
        reasons.append(f"{samples} samples, where {figure.split} has {figure.samples:,}")
    value = (record.get("metrics") or {}).get(figure.metric)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        reasons.append(f"{figure.metric} was not measured")
    return reasons


@dataclass(frozen=True)
class PublishedComparison:
    """A stored run beside one published figure: the difference in points, or why there is none."""

    checkpoint: str
    figure: PublishedFigure
    run_value: float | None  # in the figure's units (x 100)
    reasons: tuple[str, ...]

    @property
    def comparable(self) -> bool:
        return not self.reasons

    @property
    def difference(self) -> float | None:
        return None if self.reasons or self.run_value is None else self.run_value - self.figure.value


def compare_with_published(records: Sequence[Mapping[str, Any]], models: Sequence[str]) -> list[PublishedComparison]:
    """Every (checkpoint, figure of ``models``) pair whose task the checkpoint has a result for."""
    by_checkpoint: dict[str, dict[str, Mapping[str, Any]]] = {}
    for record in records:
        by_checkpoint.setdefault(record["checkpoint"]["name"], {})[record["task"]["name"]] = record
    out = []
    for checkpoint in sorted(by_checkpoint):
        for figure in (f for f in published().figures if f.model in models):
            record = by_checkpoint[checkpoint].get(figure.task)
            if record is None:
                continue
            value = (record.get("metrics") or {}).get(figure.metric)
            run_value = None if value is None else float(value) * PERCENT
            out.append(
                PublishedComparison(checkpoint, figure, run_value, tuple(not_comparable_reasons(figure, record)))
            )
    return out


def _number(value: float | None) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.1f}"


def format_published_comparison(rows: Sequence[PublishedComparison]) -> str:
    """The run beside each figure (points, x 100), with the difference or why there is none."""
    from coca_bench.results.tables import render_text_table

    if not rows:
        return "No stored result is on a task with a published figure of the chosen models."
    header = ["checkpoint", "published", "task/metric", "split", "published", "run", "difference"]
    lines = [
        [
            row.checkpoint, published().models[row.figure.model], row.figure.column, row.figure.split,
            _number(row.figure.value), _number(row.run_value),
            f"{row.difference:+.1f}" if row.comparable else "not comparable: " + "; ".join(row.reasons),
        ]
        for row in rows
    ]  # fmt: skip
    caveats = sorted({f"{r.figure.task}: {r.figure.caveat}" for r in rows if r.comparable and r.figure.caveat})
    text = render_text_table(header, lines, align="llllrrl")
    return text + ("\n\nCaveats:\n" + "\n".join(f"- {c}" for c in caveats) if caveats else "")


def paper_view(records: Sequence[Mapping[str, Any]], models: Sequence[str]) -> str:
    """The paper's tables in Markdown, the published rows of ``models`` first, then each checkpoint's run.

    A run's cell is marked † when it is not comparable with the figures in its column; the reasons follow each table.
    """
    from coca_bench.results.tables import render_markdown_table

    figures = [f for f in published().figures if f.model in models]
    by_checkpoint: dict[str, dict[str, Mapping[str, Any]]] = {}
    for record in records:
        by_checkpoint.setdefault(record["checkpoint"]["name"], {})[record["task"]["name"]] = record
    sections = []
    for view in published().views:
        columns = [column for _, column in view.columns]
        header = ["", *(label for label, _ in view.columns), *([view.average] if view.average else [])]
        rows, notes = [], {}
        for model in models:
            cells = [[f for f in figures if f.model == model and f.column == column] for column in columns]
            if not any(cells):
                continue
            values = [c[0].value if c else None for c in cells]
            texts = [" / ".join(f"{f.value:.1f}" + (f" ({f.split})" if len(c) > 1 else "") for f in c) for c in cells]
            rows.append([published().models[model], *(t or "–" for t in texts), *_average(view, values, False)])
        for checkpoint, tasks in sorted(by_checkpoint.items()):
            values, texts, marked = [], [], False
            for column in columns:
                task, _, metric = column.partition("/")
                record = tasks.get(task)
                value = None if record is None else (record.get("metrics") or {}).get(metric)
                value = None if value is None else float(value) * PERCENT
                reasons = _column_reasons(figures, column, record) if record is not None else []
                for reason in reasons:
                    notes.setdefault(reason, []).append(f"{checkpoint} {column}")
                marked |= bool(reasons)
                values.append(value)
                texts.append(_number(value) + ("†" if reasons and value is not None else ""))
            if any(v is not None for v in values):
                rows.append([f"{checkpoint} (this run)", *texts, *_average(view, values, marked)])
        if rows:
            table = render_markdown_table(header, rows)
            footnotes = "".join(f"\n- † {reason}: {', '.join(cells)}" for reason, cells in notes.items())
            sections.append(f"### {view.title}\n\n{table}\n{footnotes}")
    sources = sorted({f.source for f in figures})
    return "\n\n".join(sections) + "\n\nSources:\n" + "".join(f"\n- {s}" for s in sources) + "\n"


def _column_reasons(figures: Sequence[PublishedFigure], column: str, record: Mapping[str, Any]) -> list[str]:
    """Why a run is not comparable with a column's figures: none when it matches any of them, else the reasons of
    the figure it comes closest to."""
    reasons = [not_comparable_reasons(f, record) for f in figures if f.column == column]
    return min(reasons, key=len) if reasons else []


def _average(view: PublishedView, values: Sequence[float | None], marked: bool) -> list[str]:
    """The view's average column: the mean of every column, only when every one of them has a value."""
    if not view.average:
        return []
    if any(v is None or math.isnan(v) for v in values):
        return ["–"]
    return [f"{sum(values) / len(values):.1f}" + ("†" if marked else "")]  # type: ignore[arg-type]


__all__ = [
    "FIGURES_FILE",
    "Published",
    "PublishedComparison",
    "PublishedError",
    "PublishedFigure",
    "PublishedView",
    "compare_with_published",
    "format_published_comparison",
    "is_bundled_minidata",
    "not_comparable_reasons",
    "paper_view",
    "parse_published",
    "published",
]
