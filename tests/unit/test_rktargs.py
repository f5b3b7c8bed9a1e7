"""Golden argv tests for controller.rktargs: whole tuples, one case per manifest key."""

from __future__ import annotations

from typing import Any

import pytest

from controller.model import (
    PodUUID,
    PortRequest,
    Resources,
    SpecHash,
    TaskName,
    TaskSpec,
    Volume,
    frozen_map,
)
from controller.rktargs import (
    ArgvOptions,
    cat_manifest_argv,
    format_memory,
    gc_argv,
    go_duration,
    insecure_options,
    list_argv,
    prepare_argv,
    redact_argv,
    rm_argv,
    run_prepared_argv,
    stage1_flag,
    stamp_args,
    status_argv,
    stop_argv,
    trust_argv,
    version_argv,
    volume_name,
)

UUID = PodUUID("5bc080ca-9e03-4a3b-8b8f-1c2d3e4f5a6b")
OPTS = ArgvOptions(rkt="rkt", global_args=("--dir=/var/lib/rkt",), default_stage1_flavor="coreos")
HEAD = ("rkt", "--dir=/var/lib/rkt", "--insecure-options=image", "--debug=false")
PREP = (*HEAD, "prepare", "--quiet")
STAMP = (
    "--user-annotation=rktctl.io/task=web",
    "--user-annotation=rktctl.io/spec-hash=h1",
    "--user-label=rktctl.io/managed-by=rktctl",
)
IMAGE = "example.com/web:1.0"


def spec(**kw: Any) -> TaskSpec:
    values: dict[str, Any] = {"name": TaskName("web"), "image": IMAGE, "spec_hash": SpecHash("h1")}
    values.update(kw)
    return TaskSpec(**values)


def opts(**kw: Any) -> ArgvOptions:
    values: dict[str, Any] = {
        "rkt": "rkt",
        "global_args": ("--dir=/var/lib/rkt",),
        "default_stage1_flavor": "coreos",
    }
    values.update(kw)
    return ArgvOptions(**values)


PREPARE_CASES = [
    pytest.param(spec(), OPTS, (*PREP, IMAGE, *STAMP), id="image-only"),
    pytest.param(
        spec(command="/bin/server"),
        OPTS,
        (*PREP, IMAGE, "--exec=/bin/server", *STAMP),
        id="command",
    ),
    pytest.param(
        spec(args=("-c", "echo ${X}; exit 3")),
        OPTS,
        (*PREP, IMAGE, *STAMP, "--", "-c", "echo ${X}; exit 3"),
        id="args-after-double-dash",
    ),
    pytest.param(
        spec(command="/bin/sh", args=("--", "-x")),
        OPTS,
        (*PREP, IMAGE, "--exec=/bin/sh", *STAMP, "--", "--", "-x"),
        id="args-that-look-like-flags",
    ),
    pytest.param(
        spec(trust_prefix="example.com/web"),
        OPTS,
        (
            "rkt",
            "--dir=/var/lib/rkt",
            "--insecure-options=none",
            "--debug=false",
            "prepare",
            "--quiet",
            IMAGE,
            *STAMP,
        ),
        id="trust_prefix-means-full-verification",
    ),
    pytest.param(
        spec(insecure_options=("image", "tls")),
        OPTS,
        (
            "rkt",
            "--dir=/var/lib/rkt",
            "--insecure-options=image,tls",
            "--debug=false",
            "prepare",
            "--quiet",
            IMAGE,
            *STAMP,
        ),
        id="insecure_options",
    ),
    pytest.param(
        spec(insecure_options=("http",), trust_prefix="example.com/web"),
        OPTS,
        (
            "rkt",
            "--dir=/var/lib/rkt",
            "--insecure-options=http",
            "--debug=false",
            "prepare",
            "--quiet",
            IMAGE,
            *STAMP,
        ),
        id="insecure_options-win-over-trust_prefix",
    ),
    pytest.param(
        spec(),
        opts(insecure_default=("none",)),
        (
            "rkt",
            "--dir=/var/lib/rkt",
            "--insecure-options=none",
            "--debug=false",
            "prepare",
            "--quiet",
            IMAGE,
            *STAMP,
        ),
        id="insecure_default-none-stays-explicit",
    ),
    pytest.param(
        spec(debug=True),
        OPTS,
        (
            "rkt",
            "--dir=/var/lib/rkt",
            "--insecure-options=image",
            "--debug=true",
            "prepare",
            "--quiet",
            IMAGE,
            *STAMP,
        ),
        id="debug",
    ),
    pytest.param(
        spec(no_overlay=True), OPTS, (*PREP, "--no-overlay=true", IMAGE, *STAMP), id="no_overlay"
    ),
    pytest.param(
        spec(
            volumes=(
                Volume(host="/srv/data", container="/data"),
                Volume(host="/etc/ssl", container="/etc/ssl", read_only=True),
            )
        ),
        OPTS,
        (
            *PREP,
            "--volume=rktctl-web-0,kind=host,source=/srv/data,readOnly=false",
            "--volume=rktctl-web-1,kind=host,source=/etc/ssl,readOnly=true",
            "--mount=volume=rktctl-web-0,target=/data",
            "--mount=volume=rktctl-web-1,target=/etc/ssl",
            IMAGE,
            *STAMP,
        ),
        id="volumes-absolute-and-readOnly",
    ),
    pytest.param(
        spec(volumes=(Volume(host="cache/db", container="/var/cache"),)),
        opts(task_data_dir="/var/lib/rktctl/state/tasks"),
        (
            *PREP,
            "--volume=rktctl-web-0,kind=host,source=/var/lib/rktctl/state/tasks/web/cache/db,"
            "readOnly=false",
            "--mount=volume=rktctl-web-0,target=/var/cache",
            IMAGE,
            *STAMP,
        ),
        id="volume-relative-host-path-under-task-data-dir",
    ),
    pytest.param(
        spec(volumes=(Volume(host="/srv/x", container="/mnt/a,b+c"),)),
        OPTS,
        (
            *PREP,
            "--volume=rktctl-web-0,kind=host,source=/srv/x,readOnly=false",
            "--mount=volume=rktctl-web-0,target=/mnt/a%2Cb%2Bc",
            IMAGE,
            *STAMP,
        ),
        id="mount-target-escaped-for-rkt-query-parsing",
    ),
    pytest.param(
        spec(env=frozen_map({"ZED": "1", "ALPHA": "a=b c"})),
        OPTS,
        (*PREP, "--set-env=ALPHA=a=b c", "--set-env=ZED=1", IMAGE, *STAMP),
        id="env-sorted-by-key",
    ),
    pytest.param(
        spec(env=frozen_map({"PORT": "user", "B": "2"})),
        opts(extra_env={"RKTCTL_PORT_HTTP": "8080", "PORT": "controller", "A": "x"}),
        (
            *PREP,
            "--set-env=B=2",
            "--set-env=PORT=user",
            "--set-env=A=x",
            "--set-env=RKTCTL_PORT_HTTP=8080",
            IMAGE,
            *STAMP,
        ),
        id="extra_env-after-spec-env-and-spec-wins",
    ),
    pytest.param(
        spec(
            resources=Resources(
                ports=(PortRequest(label="http", static=8080), PortRequest(label="metrics"))
            ),
            port_map=frozen_map({"http": "80-tcp", "metrics": "9100"}),
        ),
        opts(host_ports={"metrics": 23456}),
        (*PREP, "--port=80-tcp:8080", "--port=9100-tcp:23456", IMAGE, *STAMP),
        id="ports-static-dynamic-and-numeric-name",
    ),
    pytest.param(
        spec(resources=Resources(ports=(PortRequest(label="http", static=8080),))),
        opts(host_ports={"http": 18080}),
        (*PREP, "--port=http:18080", IMAGE, *STAMP),
        id="ports-allocated-host-port-wins-label-is-name",
    ),
    pytest.param(
        spec(net=("host",), resources=Resources(ports=(PortRequest(label="http", static=80),))),
        OPTS,
        (*PREP, IMAGE, *STAMP),
        id="ports-skipped-with-host-net",
    ),
    pytest.param(
        spec(net=("none",), resources=Resources(ports=(PortRequest(label="http", static=80),))),
        OPTS,
        (*PREP, IMAGE, *STAMP),
        id="ports-skipped-with-none-net",
    ),
    pytest.param(spec(user="daemon"), OPTS, (*PREP, IMAGE, "--user=daemon", *STAMP), id="user"),
    pytest.param(spec(group="www"), OPTS, (*PREP, IMAGE, "--group=www", *STAMP), id="group"),
    pytest.param(
        spec(resources=Resources(cpu_millis=500)),
        OPTS,
        (*PREP, IMAGE, "--cpu=500m", *STAMP),
        id="cpu-millicores-with-unit",
    ),
    pytest.param(
        spec(resources=Resources(cpu_millis=2000)),
        OPTS,
        (*PREP, IMAGE, "--cpu=2000m", *STAMP),
        id="cpu-whole-cores-still-millis",
    ),
    pytest.param(
        spec(resources=Resources(memory_bytes=256 * 1024 * 1024)),
        OPTS,
        (*PREP, IMAGE, "--memory=256Mi", *STAMP),
        id="memory-Mi",
    ),
    pytest.param(
        spec(resources=Resources(memory_bytes=1536 * 1024)),
        OPTS,
        (*PREP, IMAGE, "--memory=1536Ki", *STAMP),
        id="memory-not-whole-MiB",
    ),
    pytest.param(
        spec(stage1="coreos.com/rkt/stage1-fly:1.30.0"),
        OPTS,
        (*PREP, "--stage1-name=coreos.com/rkt/stage1-fly:1.30.0", IMAGE, *STAMP),
        id="stage1-name",
    ),
    pytest.param(
        spec(),
        opts(stage1="/usr/lib/rkt/stage1-images/stage1-fly.aci"),
        (*PREP, "--stage1-path=/usr/lib/rkt/stage1-images/stage1-fly.aci", IMAGE, *STAMP),
        id="stage1-from-controller-config-path",
    ),
    pytest.param(
        spec(stage1="https://example.com/stage1-kvm.aci"),
        opts(stage1="/x/fly.aci"),
        (*PREP, "--stage1-url=https://example.com/stage1-kvm.aci", IMAGE, *STAMP),
        id="stage1-task-override-url",
    ),
    pytest.param(
        spec(image="docker://redis:7", labels=frozen_map({"team": "a"}), kill_timeout_s=5.0),
        ArgvOptions(rkt="/usr/bin/rkt"),
        (
            "/usr/bin/rkt",
            "--insecure-options=image",
            "--debug=false",
            "prepare",
            "--quiet",
            "docker://redis:7",
            *STAMP,
        ),
        id="no-global-args-and-keys-that-do-not-reach-rkt",
    ),
]


@pytest.mark.parametrize(("task", "options", "expected"), PREPARE_CASES)
def test_prepare_argv(task: TaskSpec, options: ArgvOptions, expected: tuple[str, ...]) -> None:
    assert prepare_argv(task, options) == expected


def test_prepare_argv_everything_in_rkts_order() -> None:
    """Pod flags before the image, app flags and the stamp after it, args last."""
    task = spec(
        command="/bin/sh",
        args=("-c", "run"),
        trust_prefix="example.com",
        no_overlay=True,
        volumes=(Volume(host="data", container="/data", read_only=True),),
        env=frozen_map({"K": "v"}),
        resources=Resources(
            cpu_millis=250,
            memory_bytes=64 * 1024 * 1024,
            ports=(PortRequest(label="http", static=8080),),
        ),
        port_map=frozen_map({"http": "http"}),
        user="u",
        group="g",
        stage1="coreos.com/rkt/stage1-coreos:1.30.0",
        debug=True,
    )
    assert prepare_argv(task, opts(task_data_dir="/d", extra_env={"E": "1"})) == (
        "rkt",
        "--dir=/var/lib/rkt",
        "--insecure-options=none",
        "--debug=true",
        "prepare",
        "--quiet",
        "--stage1-name=coreos.com/rkt/stage1-coreos:1.30.0",
        "--no-overlay=true",
        "--volume=rktctl-web-0,kind=host,source=/d/web/data,readOnly=true",
        "--mount=volume=rktctl-web-0,target=/data",
        "--set-env=K=v",
        "--set-env=E=1",
        "--port=http:8080",
        IMAGE,
        "--exec=/bin/sh",
        "--user=u",
        "--group=g",
        "--memory=64Mi",
        "--cpu=250m",
        *STAMP,
        "--",
        "-c",
        "run",
    )


@pytest.mark.parametrize(
    ("task", "message"),
    [
        pytest.param(
            spec(resources=Resources(ports=(PortRequest(label="http"),))),
            "dynamic port 'http' has no allocated host port",
            id="dynamic-port-unallocated",
        ),
        pytest.param(
            spec(volumes=(Volume(host="../../etc", container="/etc"),)),
            "leaves the task's data directory",
            id="relative-path-escapes",
        ),
        pytest.param(
            spec(volumes=(Volume(host="/srv/a,b", container="/d"),)),
            "contains a comma",
            id="comma-in-host-path",
        ),
        pytest.param(spec(args=("a", "---", "b")), "'---'", id="triple-dash-arg"),
    ],
)
def test_prepare_argv_rejects_what_rkt_cannot_express(task: TaskSpec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        prepare_argv(task, OPTS)


RUN_HEAD = (*HEAD, "run-prepared")


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        pytest.param(spec(), (*RUN_HEAD, UUID), id="defaults"),
        pytest.param(spec(net=("host",)), (*RUN_HEAD, "--net=host", UUID), id="net-host"),
        pytest.param(
            spec(net=("default", "backend:IP=10.1.0.5")),
            (*RUN_HEAD, "--net=default,backend:IP=10.1.0.5", UUID),
            id="net-list-joined",
        ),
        pytest.param(spec(dns_servers=("host",)), (*RUN_HEAD, "--dns=host", UUID), id="dns-host"),
        pytest.param(spec(dns_servers=("none",)), (*RUN_HEAD, "--dns=none", UUID), id="dns-none"),
        pytest.param(
            spec(dns_servers=("9.9.9.9", "1.1.1.1"), dns_search_domains=("a.example", "b.example")),
            (
                *RUN_HEAD,
                "--dns=9.9.9.9",
                "--dns=1.1.1.1",
                "--dns-search=a.example",
                "--dns-search=b.example",
                UUID,
            ),
            id="dns-servers-and-search",
        ),
        pytest.param(
            spec(trust_prefix="example.com", debug=True),
            (
                "rkt",
                "--dir=/var/lib/rkt",
                "--insecure-options=none",
                "--debug=true",
                "run-prepared",
                UUID,
            ),
            id="globals-match-prepare",
        ),
    ],
)
def test_run_prepared_argv(task: TaskSpec, expected: tuple[str, ...]) -> None:
    assert run_prepared_argv(task, UUID, OPTS) == expected


G = ("rkt", "--dir=/var/lib/rkt")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(list_argv(OPTS), (*G, "list", "--format=json"), id="list"),
        pytest.param(status_argv(UUID, OPTS), (*G, "status", "--format=json", UUID), id="status"),
        pytest.param(
            status_argv(UUID, OPTS, wait="10s"),
            (*G, "status", "--format=json", "--wait=10s", UUID),
            id="status-wait",
        ),
        pytest.param(stop_argv(UUID, OPTS), (*G, "stop", UUID), id="stop"),
        pytest.param(stop_argv(UUID, OPTS, force=True), (*G, "stop", "--force", UUID), id="stop-f"),
        pytest.param(rm_argv(UUID, OPTS), (*G, "rm", UUID), id="rm"),
        pytest.param(
            gc_argv(OPTS, grace_period_s=1800), (*G, "gc", "--grace-period=1800s"), id="gc"
        ),
        pytest.param(gc_argv(OPTS, grace_period_s=0), (*G, "gc", "--grace-period=0s"), id="gc-0"),
        pytest.param(version_argv(OPTS), (*G, "version"), id="version"),
        pytest.param(cat_manifest_argv(UUID, OPTS), (*G, "cat-manifest", UUID), id="cat-manifest"),
        pytest.param(
            trust_argv("example.com/web", OPTS),
            (*G, "--debug=false", "trust", "--prefix=example.com/web", "--skip-fingerprint-review"),
            id="trust",
        ),
        pytest.param(
            trust_argv(
                "example.com", opts(global_args=("--dir=/d", "--local-config=/e")), debug=True
            ),
            (
                "rkt",
                "--dir=/d",
                "--local-config=/e",
                "--debug=true",
                "trust",
                "--prefix=example.com",
                "--skip-fingerprint-review",
            ),
            id="trust-debug-local-config",
        ),
    ],
)
def test_other_commands(argv: tuple[str, ...], expected: tuple[str, ...]) -> None:
    assert argv == expected


def test_stamp_args_carry_name_and_hash() -> None:
    assert stamp_args(spec(name=TaskName("db"), spec_hash=SpecHash("abc"))) == (
        "--user-annotation=rktctl.io/task=db",
        "--user-annotation=rktctl.io/spec-hash=abc",
        "--user-label=rktctl.io/managed-by=rktctl",
    )


@pytest.mark.parametrize(
    ("task", "index", "expected"),
    [
        pytest.param("web", 0, "rktctl-web-0", id="plain"),
        pytest.param("my_task", 2, "rktctl-my-task-2", id="underscore"),
        pytest.param("Web.API__v2", 1, "rktctl-web-api-v2-1", id="upper-dots-runs"),
        pytest.param("-x-", 0, "rktctl-x-0", id="edge-dashes"),
        pytest.param("___", 0, "rktctl-task-0", id="nothing-left"),
    ],
)
def test_volume_name_is_acname(task: str, index: int, expected: str) -> None:
    assert volume_name(task, index) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            "coreos.com/rkt/stage1-fly:1.30.0",
            "--stage1-name=coreos.com/rkt/stage1-fly:1.30.0",
            id="name",
        ),
        pytest.param("/usr/lib/rkt/stage1.aci", "--stage1-path=/usr/lib/rkt/stage1.aci", id="path"),
        pytest.param(
            "file:///srv/stage1.aci", "--stage1-url=file:///srv/stage1.aci", id="file-url"
        ),
        pytest.param("docker://x/y", "--stage1-url=docker://x/y", id="docker-url"),
    ],
)
def test_stage1_flag(value: str, expected: str) -> None:
    assert stage1_flag(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(256 * 1024 * 1024, "256Mi", id="Mi"),
        pytest.param(2 * 1024**3, "2048Mi", id="Gi-as-Mi"),
        pytest.param(4096, "4Ki", id="Ki"),
        pytest.param(5000, "5000", id="bytes"),
    ],
)
def test_format_memory_is_exact(value: int, expected: str) -> None:
    assert format_memory(value) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0, "0s"), (1800, "1800s"), (1.5, "1500ms"), (0.001, "1ms"), (30.0, "30s")],
)
def test_go_duration(seconds: float, expected: str) -> None:
    assert go_duration(seconds) == expected


def test_go_duration_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        gc_argv(OPTS, grace_period_s=-1)


def test_insecure_options_default_from_config() -> None:
    assert insecure_options(spec(), opts(insecure_default=("image", "tls"))) == ("image", "tls")


def test_redact_argv_hides_env_values_only() -> None:
    argv = prepare_argv(spec(env=frozen_map({"TOKEN": "s3cr3t=x"})), OPTS)
    redacted = redact_argv(argv)
    assert "--set-env=TOKEN=<redacted>" in redacted
    assert not any("s3cr3t" in word for word in redacted)
    assert [w for w in redacted if not w.startswith("--set-env")] == [
        w for w in argv if not w.startswith("--set-env")
    ]
