"""Reading annotation files so that every format problem names the file and the key.

Readers validate official annotation files eagerly: a malformed file is fatal
(:class:`AnnotationFormatError`, a ``ValueError``), because a half-parsed file would
silently produce a wrong number. A missing dataset folder or annotation file is a
:class:`DatasetNotFoundError` that says which layout is expected where.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coca_bench.errors import CocaBenchError


class AnnotationFormatError(CocaBenchError, ValueError):
    """An annotation file exists but does not follow its official format."""


class DatasetNotFoundError(CocaBenchError, FileNotFoundError):
    """A dataset folder or one of its annotation files is missing."""


class DatasetLayoutError(CocaBenchError, ValueError):
    """A dataset folder exists but its folder structure is not the expected layout."""


def require_dataset_dir(root: Path, layout: str) -> Path:
    """Fail early, and helpfully, when a dataset folder is absent."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"Dataset folder {root} does not exist; expected {layout} there "
            f"(download the dataset into that folder or point the data root elsewhere)."
        )
    return root


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    list: "a list",
    dict: "an object",
    bool: "a boolean",
}


def _type_name(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)


@dataclass(frozen=True)
class AnnotationFile:
    """One official annotation file plus the name of its format, for error messages."""

    path: Path
    format_name: str

    def error(self, message: str) -> AnnotationFormatError:
        return AnnotationFormatError(f"{self.path}: {message}; expected {self.format_name}.")

    def require_exists(self, layout: str) -> AnnotationFile:
        if not self.path.is_file():
            raise DatasetNotFoundError(f"Annotation file {self.path} does not exist; expected {layout}.")
        return self

    def read_text(self) -> str:
        """The file as text; bytes that are not UTF-8 are an error naming their line (a BOM is accepted)."""
        data = self.path.read_bytes()
        data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data  # the BOM, so that offsets count from 0
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data.count(b"\n", 0, exc.start) + 1
            raise self.error(f"is not UTF-8 text (byte {data[exc.start]:#04x} at line {line})") from None

    def load_json(self) -> Any:
        text = self.read_text()
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise self.error(f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None

    def field(self, obj: Any, key: str, where: str, expected: type | tuple[type, ...]) -> Any:
        """``obj[key]``, checked to be of type ``expected``; ``where`` locates ``obj`` (e.g. ``images[3]``)."""
        if not isinstance(obj, Mapping):
            raise self.error(f"{where or 'the top level'} is {_describe(obj)}, not an object")
        if key not in obj:
            raise self.error(f"{where or 'the top level'} has no key {key!r}")
        value = obj[key]
        if not _is_instance(value, expected):
            location = f"{where}.{key}" if where else key
            raise self.error(f"{location} is {_describe(value)}, not {_type_name(expected)}")
        return value

    def text(self, obj: Any, key: str, where: str) -> str:
        """``obj[key]`` as a non-empty string, stripped: an empty caption or id is a malformed annotation."""
        value = self.field(obj, key, where, str).strip()
        if not value:
            raise self.error(f"{where}.{key} is empty" if where else f"{key} is empty")
        return value

    def media_path(self, base: Path, relative: str, where: str) -> Path:
        """``base / relative`` for a path an annotation gives; one that climbs out of ``base`` (``..``, absolute)
        is fatal, so an annotation can never make the suite read (or fingerprint) a file outside the dataset.

        The check is on the path's text, not on resolved links: a dataset folder may link its images elsewhere.
        """
        if escapes(relative):
            raise self.error(
                f"{where} {relative!r} leads outside {base}, and annotation paths must stay inside the dataset"
            )
        return Path(base) / relative

    def optional_field(self, obj: Any, key: str, where: str, expected: type | tuple[type, ...]) -> Any:
        """Like :meth:`field` but ``None`` when the key is absent (or null)."""
        if isinstance(obj, Mapping) and obj.get(key) is None:
            return None
        return self.field(obj, key, where, expected)

    def objects(self, obj: Any, key: str, where: str = "") -> list[Mapping[str, Any]]:
        """``obj[key]`` as a list of objects (JSON dicts), each element checked."""
        items = self.field(obj, key, where, list)
        prefix = f"{where}.{key}" if where else key
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise self.error(f"{prefix}[{index}] is {_describe(item)}, not an object")
        return items

    def read_csv(self, required_columns: Sequence[str]) -> list[dict[str, str]]:
        """Rows of a headed CSV file, after checking the header names ``required_columns``."""
        handle = io.StringIO(self.read_text(), newline="")
        try:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            missing = [c for c in required_columns if c not in columns]
            if missing:
                raise self.error(f"the header {columns} has no column(s) {missing}")
            rows = []
            for line_number, row in enumerate(reader, start=2):
                if None in row or any(row.get(c) is None for c in required_columns):
                    raise self.error(f"line {line_number} does not have {len(columns)} fields")
                rows.append(row)
            return rows
        except csv.Error as exc:
            raise self.error(f"is not valid CSV ({exc})") from None

    def parse_int(self, text: str, where: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise self.error(f"{where} is {text!r}, not an integer") from None


def escapes(relative: str | Path) -> bool:
    """Whether a relative path from an annotation leaves the folder it is relative to (absolute, or ``..`` below
    its start), judged on the text alone."""
    path = Path(relative)
    if path.is_absolute() or path.anchor:
        return True
    depth = 0
    for part in path.parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            return True
    return False


def _is_instance(value: Any, expected: type | tuple[type, ...]) -> bool:
    types = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in types:  # JSON true is not an id
        return False
    if float in types and isinstance(value, int):
        return True
    return isinstance(value, types)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    for python_type, name in _TYPE_NAMES.items():
        if type(value) is python_type:
            return f"{name} ({_short(value)})"
    return type(value).__name__


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = [
    "AnnotationFile",
    "AnnotationFormatError",
    "DatasetLayoutError",
    "DatasetNotFoundError",
    "escapes",
    "require_dataset_dir",
]
