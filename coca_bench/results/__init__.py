"""Result files and the tables built from them.

- :mod:`.schema`: what one ``<task>.json`` record holds, and when two records compare like for like;
- :mod:`.store`: :class:`ResultStore`, the only reader and writer of one output folder;
- :mod:`.frames`: pandas frames of an output folder (:func:`load_results`, :func:`load_samples`), the table layer;
- :mod:`.tables`: the console table and the summary files, rendered from those frames.

Nothing here imports torch.
"""

from coca_bench.results.frames import (
    RESULT_COLUMNS,
    best_checkpoints,
    load_results,
    load_samples,
    results_frame,
    summary_columns,
    summary_frame,
)
from coca_bench.results.schema import (
    SCHEMA_VERSION,
    CheckpointInfo,
    RunRecordInputs,
    build_record,
    comparability_differences,
    declared_metrics,
    provenance_differences,
    utc_timestamp,
)
from coca_bench.results.store import CHECKPOINT_FILE, SAMPLES_SUFFIX, ResultStore
from coca_bench.results.tables import (
    DEFAULT_GROUP_ORDER,
    SUMMARY_CSV,
    SUMMARY_MD,
    TRAINED_GROUPS,
    format_number,
    format_results_table,
    ordered_metric_order,
    record_groups,
    render_markdown_table,
    render_text_table,
    summary_notes,
    task_order,
    undefined_columns,
    write_summary,
)

__all__ = [
    "CHECKPOINT_FILE",
    "DEFAULT_GROUP_ORDER",
    "RESULT_COLUMNS",
    "SAMPLES_SUFFIX",
    "SCHEMA_VERSION",
    "SUMMARY_CSV",
    "SUMMARY_MD",
    "TRAINED_GROUPS",
    "CheckpointInfo",
    "ResultStore",
    "RunRecordInputs",
    "best_checkpoints",
    "build_record",
    "comparability_differences",
    "provenance_differences",
    "declared_metrics",
    "format_number",
    "format_results_table",
    "load_results",
    "load_samples",
    "ordered_metric_order",
    "record_groups",
    "render_markdown_table",
    "render_text_table",
    "results_frame",
    "summary_columns",
    "summary_frame",
    "summary_notes",
    "task_order",
    "undefined_columns",
    "utc_timestamp",
    "write_summary",
]
