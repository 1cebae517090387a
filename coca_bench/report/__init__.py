"""The HTML report of an output folder: ``run_suite.py report`` writes ``report.html``.

- :mod:`.build`: the page (summary, per-task comparison charts, samples, skips, provenance) and :func:`write_report`;
- :mod:`.samples`: the qualitative view of each task's per-sample records;
- :mod:`.media`: the pictures next to them, read through the dataset readers and embedded;
- :mod:`.browser`: a minimal headless-Chromium driver (DevTools protocol over a pipe) that loads a report, for the
  tests and for the README's screenshot.

Nothing here imports torch.
"""

from coca_bench.report.build import CONTENT_SECURITY_POLICY, REPORT_HTML, build_report, write_report

__all__ = ["CONTENT_SECURITY_POLICY", "REPORT_HTML", "build_report", "write_report"]
