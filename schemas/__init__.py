"""JSON Schemas for clickscore's records, and a small API to load and validate them.

The JSON files beside this module are the contract; the fast decoders in :mod:`schemas.event`
mirror them, and the tests check that the two agree.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from rfc3339_validator import validate_rfc3339

SchemaName = Literal["clickstream_event", "alert", "alert_outcome", "dead_letter", "manifest"]
SCHEMA_NAMES: tuple[SchemaName, ...] = (
    "clickstream_event",
    "alert",
    "alert_outcome",
    "dead_letter",
    "manifest",
)

__all__ = [
    "SCHEMA_NAMES",
    "SchemaError",
    "examples",
    "load",
    "schema_version",
    "validate",
    "validator",
]


class SchemaError(ValueError):
    """A document does not match its schema; the message names the failing path."""


@cache
def load(name: SchemaName) -> dict[str, Any]:
    """Return the parsed JSON Schema called ``name``."""
    text = resources.files(__package__).joinpath(f"{name}.schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def schema_version(name: SchemaName) -> int:
    """The schema's own version (``x-version``), bumped on every incompatible change."""
    return int(load(name)["x-version"])


@cache
def validator(name: SchemaName) -> Draft202012Validator:
    """A compiled validator that also checks ``format`` (date-time)."""
    checker = FormatChecker()
    checker.checks("date-time")(_is_date_time)
    return Draft202012Validator(load(name), format_checker=checker)


def _is_date_time(value: object) -> bool:
    """RFC 3339 date-time as :func:`schemas.event.parse_timestamp` reads it.

    jsonschema's own check needs rfc3339-validator (without it ``format`` passes anything) and
    refuses the space separator that RFC 3339 (5.6, note) allows and our readers produce.
    """
    if not isinstance(value, str):
        return True
    if value.endswith("\n"):  # the validator's `$` would let one trailing newline through
        return False
    if value[10:11] == " ":
        value = f"{value[:10]}T{value[11:]}"
    return bool(validate_rfc3339(value.upper()))


def validate(name: SchemaName, document: Any) -> None:
    """Raise :class:`SchemaError` naming the first failing path when ``document`` is invalid."""
    error = next(iter(sorted(validator(name).iter_errors(document), key=_depth)), None)
    if error is not None:
        raise SchemaError(_describe(error))


def examples(name: SchemaName, *, valid: bool = True) -> dict[str, Any]:
    """The example documents for ``name`` (``examples/`` or ``examples/invalid/``), by file name."""
    folder = resources.files(__package__).joinpath("examples" if valid else "examples/invalid")
    found: dict[str, Any] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith(f"{name}.") and entry.name.endswith(".json"):
            found[entry.name] = json.loads(entry.read_text("utf-8"))
    return found


def _depth(error: ValidationError) -> int:
    return len(error.absolute_path)


def _describe(error: ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return f"{where}: {error.message}"
