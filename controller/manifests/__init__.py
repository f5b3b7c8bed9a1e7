"""Task manifests: YAML files -> validated, defaulted TaskSpecs -> the DesiredState.

PURE. A file goes through one module per stage, imports pointing one way only (an
import-linter contract in .importlinter holds it):

    yamlload  bytes -> plain values + line index (size, UTF-8, duplicates, tags, bombs)
              (yamlscalars: which scalar tags are allowed and what they read as)
    schema    schemas/task.schema.json through jsonschema, errors worded for people
    rules     what JSON Schema cannot say (one function per rule, listed in RULES)
    spec      TaskSpec with defaults and its spec hash; parse_manifest runs the stages
    desired   a directory's files -> DesiredState (broken files, duplicate names)

with problems (Problem and its wording), quantities ("500m", "256Mi", "10s") and
variables (${...}) beneath them. The rest of rktctl uses only the names below.
"""

from __future__ import annotations

from controller.manifests.desired import (
    build_desired,
    content_hash,
    directory_revision,
    duplicate_names,
    guess_name,
)
from controller.manifests.problems import ManifestInvalidError, Problem
from controller.manifests.spec import (
    compute_spec_hash,
    parse_manifest,
    parse_manifest_document,
    spec_from_document,
)
from controller.manifests.yamlload import MAX_BYTES, read_yaml

__all__ = [
    "MAX_BYTES",
    "ManifestInvalidError",
    "Problem",
    "build_desired",
    "compute_spec_hash",
    "content_hash",
    "directory_revision",
    "duplicate_names",
    "guess_name",
    "parse_manifest",
    "parse_manifest_document",
    "read_yaml",
    "spec_from_document",
]
