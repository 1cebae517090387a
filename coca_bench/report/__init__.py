"""The HTML report of an output folder: ``run_suite.py report`` writes ``report.html``.

- :mod:`.build`: the page (summary, per-task comparison charts, samples, skips, provenance) and :func:`write_report`;
- :mod:`.samples`: the qualitative view of each task's per-sample records;
- :mod:`.media`: the pictures next to them, read through each task's own read pass and embedded.

The headless-Chromium driver that loads a report for the tests and the README's screenshot is a test helper
(``tests/browser.py``): the product writes HTML and never needs a browser.

Nothing here imports torch.
"""

from coca_bench.report.build import CONTENT_SECURITY_POLICY, REPORT_HTML, build_report, write_report

__all__ = ["CONTENT_SECURITY_POLICY", "REPORT_HTML", "build_report", "write_report"]
