"""Checkpoint comparison with paired bootstrap confidence intervals.

- :mod:`.bootstrap`: the pure statistics (records in, intervals out);
- :mod:`.matching`: which stored runs pair up, on which samples, with which declared metrics;
- :mod:`.render`: console text, Markdown, CSV and the PNG chart;
- :mod:`.cache`: a comparison stored under the hashes of what it covers, so an unchanged rerun only reads it.
"""

from coca_bench.compare.bootstrap import ci_excludes_zero, pair_by_id, paired_bootstrap
from coca_bench.compare.matching import ComparisonCell, MetricComparison, compare_runs
from coca_bench.compare.render import comparison_figure, format_comparison, order_rows, write_comparison

__all__ = [
    "ComparisonCell",
    "MetricComparison",
    "ci_excludes_zero",
    "compare_runs",
    "comparison_figure",
    "format_comparison",
    "order_rows",
    "pair_by_id",
    "paired_bootstrap",
    "write_comparison",
]
