"""Quantities and durations as manifests write them: "500m", "256Mi", "1h30m".

PURE. The rules stage calls these to word a bad value; the spec stage calls them to
convert a good one. ValueError messages are complete advice for people.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Final

from controller.manifests.problems import quote

MAX_PLAIN_CORES: Final = 100
"""A unit-less cpu string at or above this is almost surely millicores without the `m`."""

_MEMORY_UNITS: Final[Mapping[str, int]] = {
    "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
}  # fmt: skip
_MEMORY_FORMAT_ORDER: Final = ("Ti", "T", "Gi", "G", "Mi", "M", "Ki", "k")
_DURATION_UNITS: Final[Mapping[str, Decimal]] = {
    "ns": Decimal("1e-9"), "us": Decimal("1e-6"), "µs": Decimal("1e-6"), "ms": Decimal("1e-3"),
    "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600),
}  # fmt: skip
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)([A-Za-z]*)")


def parse_cpu(text: str) -> int:
    """Given a CPU quantity, return millicores: "500m" -> 500, "2" -> 2000, "1.5" -> 1500.

    Unit-less strings are cores (YAML numbers never reach here: the manifest rejects
    them as ambiguous). Raise ValueError with advice for anything else, for values
    finer than 1m, for zero, and for unit-less values of 100 cores or more (almost
    surely millicores missing their `m`).
    """
    m = re.fullmatch(r"(\d+)m", text)
    if m:
        millis = int(m[1])
    elif re.fullmatch(r"\d+(\.\d+)?", text):
        cores = Decimal(text)
        if cores >= MAX_PLAIN_CORES:
            raise ValueError(
                f'{quote(text)} would mean {text} cores; write "{text}m" for millicores, '
                f'or "{int(cores * 1000)}m" if you really mean {text} cores'
            )
        scaled = cores * 1000
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{quote(text)} is finer than 1m; round it to whole millicores")
        millis = int(scaled)
    elif re.fullmatch(r"\d+M", text):
        raise ValueError(f'{quote(text)}: millicores are a lowercase m; write "{text[:-1]}m"')
    else:
        raise ValueError(
            f'{quote(text)} is not a CPU quantity; write millicores such as "500m" '
            'or cores as a string such as "2"'
        )
    if millis <= 0:
        raise ValueError(f'{quote(text)} is zero; a CPU limit must be at least "1m"')
    return millis


def parse_memory(text: str) -> int:
    """Given a memory quantity, return bytes: "256Mi" -> 268435456, "1G" -> 10**9.

    Units: Ki, Mi, Gi, Ti (powers of 1024) and k, M, G, T (powers of 1000); a fraction
    is fine when the result is whole bytes ("1.5Gi"). Raise ValueError with advice for
    bare numbers ("256" -> write "256Mi"), unknown units and fractional bytes.
    """
    m = _QUANTITY.fullmatch(text)
    if not m:
        raise ValueError(f'{quote(text)} is not a memory quantity; write e.g. "256Mi" or "1Gi"')
    number, unit = m[1], m[2]
    if not unit:
        raise ValueError(f'{quote(text)} has no unit; write "{number}Mi"')
    if unit not in _MEMORY_UNITS:
        raise ValueError(
            f"{quote(text)} has an unknown unit {quote(unit)}; {_memory_unit_hint(number, unit)}"
        )
    total = Decimal(number) * _MEMORY_UNITS[unit]
    if total != total.to_integral_value():
        raise ValueError(f"{quote(text)} is not a whole number of bytes")
    return int(total)


def _memory_unit_hint(number: str, unit: str) -> str:
    if unit == "m":
        return f'"m" means milli (thousandths of a byte) in quantities; write "{number}Mi"'
    fixed = {"K": "k", "KB": "k", "KIB": "Ki", "MB": "M", "MIB": "Mi", "GB": "G", "GIB": "Gi",
             "TB": "T", "TIB": "Ti"}.get(unit.upper())  # fmt: skip
    if fixed is None and unit.upper() in {"KI", "MI", "GI", "TI"}:
        fixed = unit[0].upper() + "i"
    if fixed is None and unit.upper() in {"G", "T"}:
        fixed = unit.upper()
    known = "use Ki, Mi, Gi, Ti (binary) or k, M, G, T (decimal)"
    return f'write "{number}{fixed}"; {known}' if fixed else known


def format_memory(n: int) -> str:
    """Return `n` bytes in the largest unit that divides it exactly: 268435456 -> "256Mi".

    Falls back to the bare byte count (rkt's --memory accepts it) when no unit divides n.
    """
    for unit in _MEMORY_FORMAT_ORDER:
        size = _MEMORY_UNITS[unit]
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def parse_duration(text: str) -> float:
    """Given a Go-style duration ("10s", "5m", "1h30m", "250ms", "1.5h"), return seconds.

    Units: ns, us (µs), ms, s, m, h; parts may repeat ("1h30m"). Signs and bare
    numbers are refused. Raise ValueError with advice otherwise.
    """
    if re.fullmatch(r"\d+(\.\d+)?", text):
        raise ValueError(f'{quote(text)} has no unit; write "{text}s" (or m, h, ms)')
    if re.fullmatch(r"\d+(\.\d+)?d", text):
        return_hint = f'"{int(Decimal(text[:-1]) * 24)}h"' if text[:-1].isdigit() else '"24h"'
        raise ValueError(f"{quote(text)}: days are not a duration unit; write {return_hint}")
    total = Decimal(0)
    pos = 0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if not m:
            break
        total += Decimal(m[1]) * _DURATION_UNITS[m[2]]
        pos = m.end()
    if not text or pos != len(text):
        raise ValueError(
            f'{quote(text)} is not a duration; write e.g. "30s", "5m", "1h30m" or "250ms"'
        )
    return float(total)
