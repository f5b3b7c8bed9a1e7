"""Hostile manifests (issue 11): what a local user or a GitOps committer can put in a file.

The corpus in tests/data/invalid holds every attack as a file (expected.json says where
and what the error is; tests/unit/test_manifest.py checks that). Here, across the whole
corpus: messages quote at most a short, escaped excerpt of the file, env values are never
echoed, and argv built from hostile but *valid* manifests holds only the flags the argv
builder makes. Pure: no files are written.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.manifests import ManifestInvalidError, parse_manifest
from controller.manifests.problems import EXCERPT_CHARS
from controller.model import PodUUID
from controller.rktargs import ArgvOptions, prepare_argv, run_prepared_argv
from tests.argvcheck import foreign_flags
from tests.factories import task

CORPUS = Path(__file__).resolve().parents[1] / "data" / "invalid"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
OPTS = ArgvOptions(rkt="rkt", global_args=("--dir=/tmp/x",), host_ports={"web": 20000})


def _messages(data: bytes) -> tuple[str, ...]:
    with pytest.raises(ManifestInvalidError) as caught:
        parse_manifest(data, source="x.yaml")
    return caught.value.messages


def test_the_hostile_corpus_has_at_least_200_cases() -> None:
    assert len(EXPECTED) >= 200
    assert {p.name for p in CORPUS.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=lambda n: n.removesuffix(".yaml"))
def test_no_message_quotes_more_than_a_short_excerpt_of_the_file(name: str) -> None:
    """A symlink to a secret must not put the secret into status files or the log."""
    data = (CORPUS / name).read_bytes()
    with pytest.raises(ManifestInvalidError) as caught:
        parse_manifest(data, source="x.yaml")
    # Paths and messages apart: `cpu: "..."` in a file must not match `...cpu: "...`.
    text = "\n".join(f"{p.path}\n{p.message}" for p in caught.value.problems)
    window = EXCERPT_CHARS + 2  # the excerpt and the quotes around it, as YAML has them
    for line in data.decode("utf-8", errors="replace").splitlines():
        for start in range(max(len(line) - window + 1, 0)):
            chunk = line[start : start + window]
            assert chunk not in text, f"{name}: {chunk!r} is quoted"


@pytest.mark.parametrize(
    "name",
    sorted(n for n in EXPECTED if n.startswith("env-secret-")),
    ids=lambda n: n.removesuffix(".yaml"),
)
def test_a_non_string_env_value_is_never_echoed(name: str) -> None:
    data = (CORPUS / name).read_bytes()
    value = data.decode().rsplit(": ", 1)[1].strip().strip("[]{}").split(",")[0]
    value = value.split(": ")[-1]
    assert len(value) > 5
    assert all(value not in m for m in _messages(data)), value


def test_a_shadow_file_read_through_a_symlink_yields_no_byte_of_it() -> None:
    data = (CORPUS / "secret-shadow-like.yaml").read_bytes()
    (message,) = _messages(data)
    assert "Zq8s" not in message and "19700" not in message and "root" not in message


# --- argv built from hostile but valid manifests -------------------------------------------

HOSTILE_VALID = {
    "flag-like-args": 'command: "--stage1-path=/srv/evil"\n'
    '    args: ["--insecure-options=all", "-x", "--", "--- ", "----", "-"]',
    "flag-like-user-group": 'group: "--insecure-options=all"\n    command: /bin/sh',
    "flag-like-env": "command: /bin/sh",
    "flag-like-trust": 'trust_prefix: "--net=host"',
    "comma-free-volume": 'volumes: ["/srv/--exec=x:/data", "-rel:/other:readOnly"]',
}


@pytest.mark.parametrize("case", sorted(HOSTILE_VALID))
def test_hostile_but_valid_values_reach_rkt_only_inside_the_builders_flags(case: str) -> None:
    text = (
        "apiVersion: rktctl.io/v1\nkind: Task\nmetadata: {name: evil}\nspec:\n"
        '  user: "-0"\n  env: {A: "--stage1-path=/x", B: "---"}\n'
        '  stage1: "--insecure-options=all"\n'
        f"  config:\n    image: example.com/evil:1.0\n    {HOSTILE_VALID[case]}\n"
    )
    spec = parse_manifest(text, source="evil.yaml")
    argv = prepare_argv(spec, OPTS)
    assert argv[0] == "rkt"
    assert foreign_flags(argv[1:]) == []
    assert spec.image in argv
    assert foreign_flags(["prepare", "img"]) == []  # the checker itself accepts the minimum
    run = run_prepared_argv(spec, PodUUID("u"), OPTS)
    assert all(w.startswith(("--", "rkt", "run-prepared")) or w == "u" for w in run)


def test_the_checker_flags_an_image_that_is_a_flag_and_a_lone_triple_dash() -> None:
    assert foreign_flags(["prepare", "--quiet", "--exec=x", "img"]) == ["--exec=x"]
    assert foreign_flags(["prepare", "--quiet", "--dir=/evil"]) == ["--dir=/evil", "<no image>"]
    assert foreign_flags(["prepare", "img", "--", "a", "---", "b"]) == ["---"]
    assert foreign_flags(["prepare", "img", "-x"]) == ["-x"]


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"image": "--stage1-path=/srv/evil"}, id="image-flag"),
        pytest.param({"args": ("a\x00b",)}, id="nul-arg"),
        pytest.param({"command": "/bin/sh\x00"}, id="nul-command"),
        pytest.param({"env": {"A": "a\x00b"}}, id="nul-env"),
        pytest.param({"args": ("---",)}, id="triple-dash"),
    ],
)
def test_the_argv_builder_refuses_what_validation_refuses(overrides: dict[str, object]) -> None:
    """Defence in depth: ${...} values are filled in after validation."""
    with pytest.raises(ValueError, match="task web"):
        prepare_argv(task("web", **overrides), OPTS)
