"""Test helper: validate every status file in a status directory against the schema.

Used by the status tests and meant for the e2e tests (`assert_valid_status_dir(dir)`
after each scenario), so the files a real daemon writes are checked, not only
hand-built documents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from controller.resources import load_schema


def status_errors(doc: Any) -> list[str]:
    """Return every schema violation of one status document (empty when valid)."""
    schema = load_schema("status.schema.json")
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind in ("task", "controller"):
        # oneOf only says "valid under none"; checking the kind's branch names the field.
        branch = {k: v for k, v in schema.items() if k != "oneOf"}
        errors = status_errors_against(doc, {**branch, "$ref": f"#/$defs/{kind}"})
        if errors:
            return errors
    return status_errors_against(doc, schema)


def status_errors_against(doc: Any, schema: dict[str, Any]) -> list[str]:
    """Return the violations of `doc` against `schema`, one line each, sorted."""
    validator = jsonschema.Draft202012Validator(schema)
    return sorted(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(doc)
    )


def assert_valid_status_dir(status_dir: str | Path) -> int:
    """Assert controller.json and every tasks/*.json validate; return how many files were."""
    root = Path(status_dir)
    files = [root / "controller.json", *sorted((root / "tasks").glob("*.json"))]
    problems = {
        str(path): errors
        for path in files
        if (errors := status_errors(json.loads(path.read_text(encoding="utf-8"))))
    }
    assert problems == {}, problems
    return len(files)
