"""Result files and the tables built from them.

- :mod:`.schema`: what one ``<task>.json`` record holds, and when two records compare like for like;
- :mod:`.store`: :class:`ResultStore`, the only reader and writer of one output folder;
- :mod:`.tables`: the console table and the summary files.

Nothing here imports torch.
"""

from coca_bench.results.schema import (
    SCHEMA_VERSION,
    CheckpointInfo,
    RunRecordInputs,
    build_record,
    comparability_differences,
    declared_metrics,
    utc_timestamp,
)
from coca_bench.results.store import CHECKPOINT_FILE, SAMPLES_SUFFIX, ResultStore
from coca_bench.results.tables import (
    SUMMARY_CSV,
    SUMMARY_MD,
    format_number,
    format_results_table,
    render_csv,
    render_markdown_table,
    render_text_table,
    write_summary,
)

__all__ = [
    "CHECKPOINT_FILE",
    "SAMPLES_SUFFIX",
    "SCHEMA_VERSION",
    "SUMMARY_CSV",
    "SUMMARY_MD",
    "CheckpointInfo",
    "ResultStore",
    "RunRecordInputs",
    "build_record",
    "comparability_differences",
    "declared_metrics",
    "format_number",
    "format_results_table",
    "render_csv",
    "render_markdown_table",
    "render_text_table",
    "utc_timestamp",
    "write_summary",
]
