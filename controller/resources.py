"""Packaged data files: the JSON Schemas.

The schemas live in the repository's top-level `schemas/`; `controller/schemas` is a
symlink to it and the wheel carries real copies (see pyproject.toml), so the
same `load_schema()` works from a source checkout, an editable install and an
installed wheel. Reading package data is the only I/O here.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Return the parsed JSON Schema `schemas/<name>` (e.g. "task.schema.json")."""
    text = resources.files("controller.schemas").joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def load_schema_bytes(name: str) -> bytes:
    """Return the bytes of `schemas/<name>` (what a fingerprint of the schema digests)."""
    return resources.files("controller.schemas").joinpath(name).read_bytes()
