"""Reading annotation files so that every format problem names the file and the key.

Readers validate official annotation files eagerly: a malformed file is fatal
(:class:`AnnotationFormatError`, a ``ValueError``), because a half-parsed file would
silently produce a wrong number. A missing dataset folder or annotation file is a
:class:`DatasetNotFoundError` that says which layout is expected where.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class AnnotationFormatError(ValueError):
    """An annotation file exists but does not follow its official format."""


class DatasetNotFoundError(FileNotFoundError):
    """A dataset folder or one of its annotation files is missing."""


class DatasetLayoutError(ValueError):
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

    def load_json(self) -> Any:
        try:
            with open(self.path, encoding="utf-8") as handle:
                return json.load(handle)
        except json.JSONDecodeError as exc:
            raise self.error(f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
        except UnicodeDecodeError:
            raise self.error("is not UTF-8 text") from None

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
        try:
            with open(self.path, newline="", encoding="utf-8") as handle:
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
        except UnicodeDecodeError:
            raise self.error("is not UTF-8 text") from None
        except csv.Error as exc:
            raise self.error(f"is not valid CSV ({exc})") from None

    def parse_int(self, text: str, where: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise self.error(f"{where} is {text!r}, not an integer") from None


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
    "require_dataset_dir",
]
