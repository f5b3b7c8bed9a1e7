"""Does an rkt argv hold only flags that rktctl's argv builder makes?

Used by the hostile-input tests at the unit level (argv built from hostile but valid
manifests) and end to end (every argv the daemon passed to the fake rkt). A value from a
manifest may appear inside a `--flag=value` word, as the image, or as an app argument
after `--`; it must never stand where rkt parses a flag of its own.
"""

from __future__ import annotations

from collections.abc import Sequence

# `rkt [globals] --insecure-options=.. --debug=.. <subcommand> ...`
GLOBAL_FLAGS = ("--dir=", "--local-config=", "--system-config=", "--insecure-options=", "--debug=")
POD_FLAGS = (
    "--quiet", "--stage1-name=", "--stage1-path=", "--stage1-url=", "--no-overlay=",
    "--volume=", "--mount=", "--set-env=", "--port=", "--pull-policy=never",
)  # fmt: skip
APP_FLAGS = (
    "--exec=", "--user=", "--group=", "--memory=", "--cpu=", "--user-annotation=",
    "--user-label=",
)  # fmt: skip


def foreign_flags(argv: Sequence[str]) -> list[str]:
    """Return the words of a `prepare` argv (without argv[0]) that no builder rule explains."""
    words = list(argv)
    bad: list[str] = []
    i = 0
    while i < len(words) and words[i] != "prepare":
        if not words[i].startswith(GLOBAL_FLAGS):
            bad.append(words[i])
        i += 1
    i += 1
    while i < len(words) and words[i].startswith("-"):  # pod flags, up to the image
        if not words[i].startswith(POD_FLAGS):
            bad.append(words[i])
        i += 1
    if i >= len(words):
        return [*bad, "<no image>"]
    i += 1  # the image: it does not start with "-" (else the loop above took it)
    while i < len(words) and words[i] != "--":
        if not words[i].startswith(APP_FLAGS):
            bad.append(words[i])
        i += 1
    # After `--` come the app's arguments; rkt ends them only at a lone `---`.
    bad += [w for w in words[i + 1 :] if w == "---"]
    bad += [w for w in words if "\x00" in w]
    return bad
