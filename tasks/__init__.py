"""The built-in task plugins, one file each; installed as ``coca_bench.builtin_tasks`` (see pyproject.toml)."""
