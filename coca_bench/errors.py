"""The root of every user-facing error: the CLI prints any :class:`CocaBenchError` as one line and exits 2.

Why one root: the CLI must tell "your input is wrong" (a misspelt parameter, a malformed annotation file, a missing
dataset) from a bug, without importing every module that can raise the former. Each error also derives from the
builtin it refines (``ValueError``, ``FileNotFoundError``...), so callers that catch those keep working. This module
imports nothing, so anything may import it.
"""

from __future__ import annotations


class CocaBenchError(Exception):
    """An error in what the user asked for or gave: its message says what was wrong, where, and what to do."""


class SettingValueError(CocaBenchError, ValueError):
    """A generation, probe or frame-sampling setting out of its range (most are refused earlier, as parameters)."""


__all__ = ["CocaBenchError", "SettingValueError"]
