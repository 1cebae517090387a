"""Run the coca-bench suite from a source checkout: ``python run_suite.py --tasks list``."""

from coca_bench.cli import main

raise SystemExit(main())
