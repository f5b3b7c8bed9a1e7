"""`${...}` variables in manifest strings: finding them, and wording the unknown ones.

PURE. Interpolation itself happens at placement time (controller.interpolate); here a
manifest is only checked, so a typo is reported when the file is saved rather than when
the pod would start.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Final

from controller.manifests.problems import clip, did_you_mean, quote_key

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VAR_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_PORT_VAR = re.compile(r"(RKTCTL|NOMAD)_(HOST_PORT|PORT|IP|ADDR)_(.+)")
_NAMESPACES: Final = ("meta", "attr", "node", "driver", "env", "task")
VARIABLE_FORMS: Final = (
    "${RKTCTL_PORT_<label>} (also _HOST_PORT_, _IP_, _ADDR_; NOMAD_ for RKTCTL_), "
    "${meta.*}, ${attr.*}, ${node.*}, ${driver.*}, ${env.*}, ${task.name}"
)


def iter_variables(text: str) -> Iterator[tuple[int, str | None]]:
    """Yield (offset, name) for every `${name}` in `text`; name is None for an unclosed `${`.

    `$${` is an escape for a literal `${` and yields nothing.
    """
    pos = 0
    while True:
        start = text.find("$", pos)
        if start < 0:
            return
        if text.startswith("$${", start):
            pos = start + 3
            continue
        if not text.startswith("${", start):
            pos = start + 1
            continue
        end = text.find("}", start + 2)
        if end < 0:
            yield start, None
            return
        yield start, text[start + 2 : end]
        pos = end + 1


def variable_problems(text: str, ports: Sequence[str]) -> list[str]:
    out: list[str] = []
    for _offset, name in iter_variables(text):
        if name is None:
            out.append("has an unclosed '${'; close it with '}' or write '$${' for a literal '${'")
            continue
        shown = "${" + clip(name) + "}"
        if not _VAR_NAME.fullmatch(name):
            out.append(
                f"{shown} is not a valid variable; names use letters, digits, '_', '.' and '-'"
            )
            continue
        if name == "NOMAD_TASK_NAME":  # Nomad's spelling of ${task.name}
            continue
        port = _PORT_VAR.fullmatch(name)
        if port:
            label = port[3]
            if label not in ports:
                declared = ", ".join(ports) if ports else "none"
                out.append(
                    f"{shown} refers to port {quote_key(label)}, which spec.resources.ports "
                    f"does not declare (declared: {declared})" + did_you_mean(label, ports)
                )
            continue
        namespace, _, rest = name.partition(".")
        if namespace in _NAMESPACES and rest:
            if namespace == "env" and not ENV_NAME.fullmatch(rest):
                out.append(f"{shown}: {quote_key(rest)} is not an environment variable name")
            elif namespace == "task" and rest != "name":
                out.append(f"{shown} is unknown; the only task variable is ${{task.name}}")
            continue
        hint = ""
        if ENV_NAME.fullmatch(name):
            hint = f"; for the controller's environment write ${{env.{clip(name)}}}"
        out.append(
            f"{shown} is not a known variable{hint}; use {VARIABLE_FORMS}, "
            f"or write $${{{clip(name)}}} for a literal"
        )
    return out
