"""`spec.extra_args` (controller/extraargs.py): rare rkt flags, bounded by a deny-list.

A flag rktctl manages from another key is a validation error naming that key; a flag
rkt 1.30 does not have is refused at validation; the flags reach the argv in the
right place, are hashed only when present, and privileged ones are policy-gated.
"""

from __future__ import annotations

import dataclasses

import pytest

from controller import extraargs
from controller.config import ConfigError, parse_config
from controller.manifests import ManifestInvalidError, compute_spec_hash, parse_manifest
from controller.model import PodUUID
from controller.rktargs import ArgvOptions, prepare_argv, run_prepared_argv
from controller.security import WorkloadPolicy, problems
from tests.factories import task

BASE = """\
apiVersion: rktctl.io/v1
kind: Task
metadata: {name: web}
spec:
  config: {image: example.com/web, command: /bin/sleep}
"""


def with_extra(prepare: list[str] | None = None, run: list[str] | None = None) -> str:
    text = BASE + "  extra_args:\n"
    if prepare is not None:
        text += f"    prepare: {prepare!r}\n"
    if run is not None:
        text += f"    run_prepared: {run!r}\n"
    return text.replace("'", '"')


def errors(text: str) -> str:
    with pytest.raises(ManifestInvalidError) as info:
        parse_manifest(text, source="w.yaml")
    return str(info.value)


def test_passable_flags_parse_into_the_spec() -> None:
    spec = parse_manifest(
        with_extra(["--working-dir=/srv", "--private-users"], ["--hostname=box"]), source="w"
    )
    assert spec.extra_prepare_args == ("--working-dir=/srv", "--private-users")
    assert spec.extra_run_args == ("--hostname=box",)


@pytest.mark.parametrize(
    ("flag", "key"),
    [("--cpu=2", "spec.resources.cpu"), ("--memory=1G", "spec.resources.memory"),
     ("--volume=x,kind=host,source=/", "spec.config.volumes"),
     ("--mount=volume=x,target=/y", "spec.config.volumes"),
     ("--insecure-options=all", "spec.config.insecure_options"),
     ("--stage1-path=/evil.aci", "spec.stage1"), ("--stage1-from-dir=x.aci", "spec.stage1"),
     ("--user-annotation=rktctl.io/task=other", "ownership stamp"),
     ("--user-label=a=b", "ownership stamp"), ("--annotation=a=b", "ownership stamp"),
     ("--dir=/tmp/other", "rkt_dir"), ("--set-env=A=b", "spec.env"), ("--user=0", "spec.user"),
     ("--exec=/bin/sh", "spec.config.command"), ("--port=http:80", "spec.resources.ports")],
)  # fmt: skip
def test_a_managed_prepare_flag_is_refused_naming_its_key(flag: str, key: str) -> None:
    message = errors(with_extra([flag]))
    assert "spec.extra_args.prepare[0]" in message
    assert f"--{extraargs.flag_name(flag)} is set by rktctl from" in message
    assert key in message


@pytest.mark.parametrize(
    ("flag", "key"),
    [("--net=host", "spec.config.net"), ("--dns=8.8.8.8", "spec.config.dns_servers"),
     ("--dns-search=x.org", "spec.config.dns_search_domains"), ("--debug", "spec.config.debug")],
)  # fmt: skip
def test_a_managed_run_prepared_flag_is_refused(flag: str, key: str) -> None:
    message = errors(with_extra(None, [flag]))
    assert "spec.extra_args.run_prepared[0]" in message and key in message


@pytest.mark.parametrize(
    ("prepare", "run", "words"),
    [(["--quiet"], None, "rktctl's own"), (["--pod-manifest=/x"], None, "rktctl's own"),
     (None, ["--interactive"], "rktctl's own"),
     (["--hostname=x"], None, "a flag of rkt run-prepared, not of prepare"),
     (None, ["--working-dir=/x"], "a flag of rkt prepare, not of run-prepared"),
     (["--bogus=1"], None, "rkt 1.30 has no prepare flag --bogus"),
     (["--working-dir"], None, "takes a value: write --working-dir=VALUE"),
     (["--name=a", "--name=b"], None, "given twice"),
     (["--name=${task.name}"], None, "variables are not resolved"),
     (["working-dir=/x"], None, "one rkt flag per item")],
)  # fmt: skip
def test_other_refusals(prepare: list[str] | None, run: list[str] | None, words: str) -> None:
    assert words in errors(with_extra(prepare, run))


def test_repeatable_flags_may_repeat() -> None:
    spec = parse_manifest(
        with_extra(["--caps-remove=CAP_NET_RAW", "--caps-remove=CAP_MKNOD"]), source="w"
    )
    assert len(spec.extra_prepare_args) == 2


def test_the_tables_are_disjoint_and_cover_rkts_flags() -> None:
    for command in (extraargs.PREPARE, extraargs.RUN_PREPARED):
        assert not extraargs.PASSABLE[command] & set(extraargs.MANAGED[command])
    assert (
        set(extraargs.PRIVILEGED)
        <= extraargs.PASSABLE["prepare"] | extraargs.PASSABLE["run_prepared"]
    )


def test_without_extra_args_the_hash_is_unchanged_and_with_them_it_moves() -> None:
    plain = parse_manifest(BASE, source="w")
    empty = parse_manifest(BASE + "  extra_args: {prepare: [], run_prepared: []}\n", source="w")
    assert empty.spec_hash == plain.spec_hash
    prep = parse_manifest(with_extra(["--working-dir=/srv"]), source="w")
    run = parse_manifest(with_extra(None, ["--hostname=box"]), source="w")
    assert len({plain.spec_hash, prep.spec_hash, run.spec_hash}) == 3
    # the lists are not interchangeable: the same words in the other list hash apart
    swapped = dataclasses.replace(
        prep, extra_prepare_args=(), extra_run_args=prep.extra_prepare_args
    )
    assert compute_spec_hash(swapped) != prep.spec_hash


def test_argv_places_prepare_flags_after_the_image_and_run_flags_before_the_uuid() -> None:
    spec = task(
        "web",
        image="example.com/web",
        args=("9",),
        extra_prepare_args=("--working-dir=/srv",),
        extra_run_args=("--hostname=box",),
    )
    opts = ArgvOptions(rkt="rkt")
    argv = prepare_argv(spec, opts)
    image = argv.index("example.com/web")
    extra = argv.index("--working-dir=/srv")
    assert image < extra < argv.index("--") and extra < argv.index(
        "--user-annotation=rktctl.io/task=web"
    )
    run = run_prepared_argv(spec, PodUUID("u-1"), opts)
    assert run[-2:] == ("--hostname=box", "u-1")


def test_privileged_flags_are_blocked_unless_the_config_allows_them() -> None:
    spec = task("web", extra_prepare_args=("--caps-retain=CAP_SYS_ADMIN", "--working-dir=/x"),
                extra_run_args=("--ipc=parent",))  # fmt: skip
    found = problems(spec, WorkloadPolicy())
    assert len(found) == 2
    assert found[0].startswith("spec.extra_args.prepare[0]: --caps-retain")
    assert "allowed_extra_args" in found[0]
    assert found[1].startswith("spec.extra_args.run_prepared[0]: --ipc")
    assert problems(spec, WorkloadPolicy(allowed_extra_args=("caps-retain", "ipc"))) == ()


def test_config_refuses_an_unknown_gated_flag() -> None:
    assert parse_config({"allowed_extra_args": ["seccomp"]}, {}).allowed_extra_args == ("seccomp",)
    with pytest.raises(ConfigError, match="allowed_extra_args"):
        parse_config({"allowed_extra_args": ["--seccomp"]}, {})
