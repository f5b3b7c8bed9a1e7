"""Rules for `metadata`: the task's name.

PURE. The schema's pattern already refuses a bad name; this rule words it with a fix.
"""

from __future__ import annotations

import re

from controller.manifests.problems import quote, quote_key
from controller.manifests.rules.document import Document, get

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def is_task_name(name: str) -> bool:
    """Whether `name` can name a task: a DNS-1123 label."""
    return len(name) <= 63 and DNS_LABEL.fullmatch(name) is not None


def name(doc: Document) -> None:
    name = get(doc.data, "metadata", "name")
    if isinstance(name, str) and name and not is_task_name(name):
        fixed = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")[:63].strip("-")
        hint = f"; try {quote_key(fixed)}" if fixed and is_task_name(fixed) else ""
        doc.add(
            ("metadata", "name"),
            f"{quote(name)} is not a DNS-1123 label (lowercase letters, digits and '-', "
            f"starting and ending with a letter or digit, at most 63 characters){hint}",
        )
