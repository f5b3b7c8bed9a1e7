"""Stage 3: the rules JSON Schema cannot express (cross-field, quantities, ${...}).

PURE. Each rule is a function `rule(doc)` that adds problems to the Document; every
rule tolerates ill-typed input (the schema reports that). A rule for a new key goes
in the module of the manifest section holding the key (metadata, config for
`spec.config`, taskspec for the rest of `spec`) and is listed in RULES below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from controller.manifests.problems import Problem
from controller.manifests.rules import config, metadata, taskspec
from controller.manifests.rules.document import Document
from controller.manifests.yamlload import LineIndex

Rule = Callable[[Document], None]

RULES: Final[tuple[Rule, ...]] = (
    config.argv_words,
    metadata.name,
    config.insecure_and_trust,
    config.dns,
    config.net,
    config.ports_and_port_map,
    config.volumes,
    taskspec.quantities,
    taskspec.durations,
    taskspec.constraints,
    taskspec.stage1,
    taskspec.update_order,
    taskspec.update_timing,
    taskspec.health,
    taskspec.reload,
    taskspec.variables,
    taskspec.extra_args,
)


def rule_problems(data: dict[str, object], index: LineIndex) -> list[Problem]:
    """Return the problems every rule finds in the loaded manifest `data`."""
    doc = Document(data, index)
    for rule in RULES:
        rule(doc)
    return doc.problems
