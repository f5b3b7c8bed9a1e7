"""`rktctl status` shows broken manifests without a task name (issue 11, item 11).

A dangling symlink, a refused or unreadable file or directory has no task document; it
was only in controller.json, so the table a person reads hid it.
"""

from __future__ import annotations

from controller.statustable import render_table


def test_unnamed_invalid_manifests_get_rows_after_the_tasks() -> None:
    table = render_table(
        {"web": {"name": "web", "phase": "Running", "message": "pod up"}},
        now=0.0,
        invalid_manifests=[
            {"source": "/d/gone.yaml", "messages": ["/d/gone.yaml: not read: dangling"]},
            {"source": "/d/team", "messages": ["/d/team: cannot read this directory"]},
            "not a mapping: ignored",
        ],
    )
    lines = table.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "POD", "RESTARTS", "AGE", "MESSAGE"]
    assert lines[1].startswith("web ")
    assert lines[2].split()[:5] == ["-", "Invalid", "-", "-", "-"]
    assert lines[2].endswith("/d/gone.yaml: not read: dangling")
    assert lines[3].endswith("/d/team: cannot read this directory")
    assert len(lines) == 4


def test_without_invalid_manifests_the_table_is_unchanged() -> None:
    docs = {"web": {"name": "web", "phase": "Running", "message": "m"}}
    assert render_table(docs, now=0.0) == render_table(docs, now=0.0, invalid_manifests=[])
