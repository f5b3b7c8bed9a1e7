"""Unit tests of the manifests package: loading, validation, conversion, spec hash, desired set.

The invalid corpus lives in tests/data/invalid (one file per mistake, expectations in
its expected.json); every other case is a table here. Pure: no files are written.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.errors import ManifestError
from controller.manifests import (
    MAX_BYTES,
    ManifestInvalidError,
    Problem,
    build_desired,
    compute_spec_hash,
    content_hash,
    duplicate_names,
    guess_name,
    parse_manifest,
)
from controller.manifests.problems import format_path
from controller.manifests.quantities import format_memory, parse_cpu, parse_duration, parse_memory
from controller.manifests.variables import iter_variables
from controller.manifests.yamlload import MAX_DEPTH
from controller.model import (
    Constraint,
    DesiredState,
    Invalid,
    PortRequest,
    Resources,
    Restart,
    RestartPolicy,
    SpecHash,
    TaskName,
    TaskSpec,
    UpdateOrder,
    Volume,
    frozen_map,
)

CORPUS = Path(__file__).resolve().parents[1] / "data" / "invalid"
EXPECTED: dict[str, dict[str, Any]] = json.loads((CORPUS / "expected.json").read_text())

MINIMAL = """\
apiVersion: rktctl.io/v1
kind: Task
metadata:
  name: web
spec:
  config:
    image: docker://nginx:1.13
"""

# The manifest of issue 2, with the `metrics` port mapped (every port needs a mapping).
FULL = """\
apiVersion: rktctl.io/v1
kind: Task
metadata:
  name: redis            # DNS-1123 label
  labels: {tier: cache}
spec:
  config:
    image: docker://redis:3.2
    command: redis-server
    args: ["--port", "${RKTCTL_PORT_db}"]
    trust_prefix: coreos.com/etcd
    insecure_options: [tls, http]
    dns_servers: ["10.0.0.2"]
    dns_search_domains: [example.com]
    net: [default]
    port_map: {db: "6379-tcp", metrics: 9121}
    debug: false
    no_overlay: false
    volumes: ["/srv/redis:/data", "/etc/redis:/etc/redis:readOnly"]
    group: redis
  user: redis
  env: {REDIS_MODE: standalone}
  resources:
    cpu: 500m
    memory: 256Mi
    ports:
      metrics: {}
      db: {static: 6379}
  restart: {policy: always, initial_delay: 10s, max_delay: 5m, stable_after: 1h}
  kill_timeout: 30s
  stage1: coreos.com/rkt/stage1-fly:1.30.0
  update: {order: stop-first}
  constraints:
    - {attribute: "${driver.rkt.version}", operator: ">=", value: "1.27.0"}
"""


def problems_of(data: bytes | str, source: str = "m.yaml") -> tuple[Problem, ...]:
    with pytest.raises(ManifestInvalidError) as caught:
        parse_manifest(data, source=source)
    return caught.value.problems


def without_hash(spec: TaskSpec) -> TaskSpec:
    return dataclasses.replace(spec, spec_hash=SpecHash(""))


# --- the invalid corpus ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=lambda n: n.removesuffix(".yaml"))
def test_corpus_file_fails_with_its_expected_path_line_and_message(name: str) -> None:
    want = EXPECTED[name]
    data = (CORPUS / name).read_bytes()
    source = f"tests/data/invalid/{name}"
    try:
        parse_manifest(data, source=source)
    except ManifestInvalidError as exc:
        problems, messages = exc.problems, exc.messages
    else:
        pytest.fail(f"{name} was accepted")
    matching = [p for p in problems if p.path == want["path"] and p.line == want["line"]]
    assert matching, f"no problem at {want['path']!r} line {want['line']}: {problems}"
    assert any(want["message"] in p.message for p in matching), matching
    # Every message names the file, then the line when known, then the path.
    prefix = source if want["line"] is None else f"{source}:{want['line']}"
    head = f"{prefix}: {want['path']}: " if want["path"] else f"{prefix}: "
    assert any(m.startswith(head) and want["message"] in m for m in messages), messages


def test_corpus_is_big_enough_and_every_file_has_an_expectation() -> None:
    files = {p.name for p in CORPUS.glob("*.yaml")}
    assert files == set(EXPECTED)
    assert len(files) >= 60


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"a: " + b"x" * MAX_BYTES, id="bytes"),
        pytest.param("a: " + "x" * MAX_BYTES, id="text"),
        pytest.param("# " + "é" * (MAX_BYTES // 2), id="text-multibyte"),
    ],
)
def test_a_file_over_one_mebibyte_is_refused_before_parsing(data: bytes | str) -> None:
    (problem,) = problems_of(data)
    assert (problem.line, problem.path) == (None, "")
    assert "over the 1024 KiB limit" in problem.message


def test_a_file_of_exactly_the_limit_is_parsed() -> None:
    data = MINIMAL.encode() + b"#" * (MAX_BYTES - len(MINIMAL))
    assert len(data) == MAX_BYTES
    assert parse_manifest(data, source="m.yaml").name == "web"


def test_billion_laughs_is_refused_as_a_yaml_bomb() -> None:
    """Timing is a benchmark (bench/bench_validate.py prints it); here: the right error."""
    data = (CORPUS / "billion-laughs.yaml").read_bytes()
    (problem,) = problems_of(data)
    assert "YAML bomb" in problem.message


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: " + "[" * 40 + "]" * 40 + "\n", id="flow"),
        pytest.param(
            "".join(f"{'  ' * i}k{i}:\n" for i in range(40)) + "  " * 40 + "v\n", id="block"
        ),
    ],
)
def test_well_formed_nesting_past_the_cap_is_refused_by_the_cap(text: str) -> None:
    """Deep enough for rktctl's composer cap, shallow enough for any libyaml's own limit."""
    (problem,) = problems_of(text)
    assert problem.message == f"nested deeper than {MAX_DEPTH} levels; a manifest needs about 5"


def test_a_mebibyte_of_open_brackets_is_refused_as_one_yaml_problem_on_line_1() -> None:
    """The contract, not the wording a PyYAML release owns.

    Older PyYAML lets the composer reach MAX_DEPTH; 6.0.4's scanner refuses deep flow
    nesting first. Either way: one problem, on line 1, in rktctl's words with the fix.
    """
    (problem,) = problems_of("a: " + "[" * (MAX_BYTES - 10))
    assert problem.line == 1
    assert problem.message == (
        f"nested deeper than {MAX_DEPTH} levels; a manifest needs about 5"
    ) or re.fullmatch(r"invalid YAML: .+; fix the syntax", problem.message), problem.message


def test_every_problem_of_a_file_is_reported_at_once_in_line_order() -> None:
    data = MINIMAL.replace("image: docker://nginx:1.13", "imagee: nginx") + (
        '  resources:\n    memory: "256"\n    cpu: 2\n  restart: {policy: sometimes}\n'
    )
    with pytest.raises(ManifestError) as caught:
        parse_manifest(data, source="desired/web.yaml")
    assert caught.value.messages == (
        "desired/web.yaml:6: spec.config.image: required key is missing; add it",
        "desired/web.yaml:7: spec.config.imagee: unknown key 'imagee'; did you mean 'image'?",
        'desired/web.yaml:9: spec.resources.memory: "256" has no unit; write "256Mi"',
        "desired/web.yaml:10: spec.resources.cpu: 2 is a bare number, which is ambiguous "
        '(cores? millicores? MHz?); write "2000m" or quote cores: "2"',
        'desired/web.yaml:11: spec.restart.policy: "sometimes" is not one of always, '
        "on-failure, never",
    )
    assert caught.value.source == "desired/web.yaml"


def test_the_issue_example_message_is_reproduced_exactly() -> None:
    data = (
        "apiVersion: rktctl.io/v1\nkind: Task\nmetadata: {name: web}\n"
        'spec:\n  config: {image: x}\n  resources:\n    memory: "256"\n'
    )
    with pytest.raises(ManifestError) as caught:
        parse_manifest(data, source="desired/web.yaml")
    assert caught.value.messages == (
        'desired/web.yaml:7: spec.resources.memory: "256" has no unit; write "256Mi"',
    )


# --- valid manifests -----------------------------------------------------------------------


def test_the_full_example_becomes_this_whole_task_spec() -> None:
    spec = parse_manifest(FULL, source="desired/redis.yaml")
    assert without_hash(spec) == TaskSpec(
        name=TaskName("redis"),
        image="docker://redis:3.2",
        spec_hash=SpecHash(""),
        labels=frozen_map({"tier": "cache"}),
        command="redis-server",
        args=("--port", "${RKTCTL_PORT_db}"),
        trust_prefix="coreos.com/etcd",
        insecure_options=("tls", "http"),
        dns_servers=("10.0.0.2",),
        dns_search_domains=("example.com",),
        net=("default",),
        port_map=frozen_map({"db": "6379-tcp", "metrics": "9121"}),
        debug=False,
        no_overlay=False,
        volumes=(
            Volume(host="/srv/redis", container="/data", read_only=False),
            Volume(host="/etc/redis", container="/etc/redis", read_only=True),
        ),
        group="redis",
        user="redis",
        env=frozen_map({"REDIS_MODE": "standalone"}),
        resources=Resources(
            cpu_millis=500,
            memory_bytes=256 * 1024 * 1024,
            ports=(PortRequest(label="db", static=6379), PortRequest(label="metrics")),
        ),
        restart=Restart(
            policy=RestartPolicy.ALWAYS,
            initial_delay_s=10.0,
            max_delay_s=300.0,
            stable_after_s=3600.0,
        ),
        kill_timeout_s=30.0,
        constraints=(Constraint(attribute="${driver.rkt.version}", operator=">=", value="1.27.0"),),
        stage1="coreos.com/rkt/stage1-fly:1.30.0",
        update_order=UpdateOrder.STOP_FIRST,
    )
    assert spec.source == "desired/redis.yaml"
    assert spec.spec_hash == compute_spec_hash(spec)
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", spec.spec_hash)


def test_a_minimal_manifest_gets_every_default() -> None:
    spec = parse_manifest(MINIMAL, source="web.yaml")
    assert without_hash(spec) == TaskSpec(
        name=TaskName("web"), image="docker://nginx:1.13", spec_hash=SpecHash("")
    )
    assert spec.restart == Restart(
        policy=RestartPolicy.ALWAYS, initial_delay_s=10.0, max_delay_s=300.0, stable_after_s=600.0
    )
    assert (spec.kill_timeout_s, spec.update_order) == (30.0, UpdateOrder.STOP_FIRST)


def test_the_spec_hash_of_a_fixed_manifest_never_changes() -> None:
    """Pinned: a new canonical form would replace every running pod on upgrade."""
    assert parse_manifest(MINIMAL, source="web.yaml").spec_hash == "sha256:6f5c2895fa6ec211"


@pytest.mark.parametrize(
    ("extra", "field", "want"),
    [
        pytest.param('cpu: "1.5"', "cpu_millis", 1500, id="cpu-fractional-cores"),
        pytest.param('cpu: "2"', "cpu_millis", 2000, id="cpu-quoted-cores"),
        pytest.param("cpu: 1m", "cpu_millis", 1, id="cpu-one-millicore"),
        pytest.param("memory: 1.5Gi", "memory_bytes", 1536 << 20, id="memory-fraction"),
        pytest.param("memory: 1G", "memory_bytes", 10**9, id="memory-decimal"),
        pytest.param("memory: 4Ki", "memory_bytes", 4096, id="memory-minimum"),
    ],
)
def test_quantities_are_normalised(extra: str, field: str, want: object) -> None:
    text = MINIMAL + "  resources:\n    " + extra + "\n"
    spec = parse_manifest(text, source="m.yaml")
    assert getattr(spec.resources, field) == want


VALID_VARIANTS = [
    pytest.param("    dns_servers: [none]\n", id="dns-none"),
    pytest.param("    dns_servers: [\"::1\", 10.0.0.2]\n", id="dns-ipv6-and-ipv4"),
    pytest.param("    net: [host]\n  resources: {ports: {http: {static: 8080}}}\n", id="host-net"),
    pytest.param("    net: [\"default:IP=10.1.0.5\", backend]\n", id="net-with-args"),
    pytest.param("    args: [\"$${not_a_variable}\", \"$HOME\", \"a$b\"]\n", id="escapes"),
    pytest.param("    args: [\"${NOMAD_ADDR_http}\", \"${NOMAD_TASK_NAME}\"]\n"
                 "    port_map: {http: 80}\n  resources: {ports: {http: }}\n", id="nomad-vars"),
    pytest.param("    args: [\"${meta.rack}\", \"${attr.kernel.name}\", \"${node.unique.id}\","
                 " \"${driver.rkt.version}\", \"${env.HOME}\", \"${task.name}\"]\n",
                 id="every-namespace"),
    pytest.param("    volumes: [\"data/db:/var/lib/db\", \"./logs:/logs:readOnly\"]\n",
                 id="relative-volumes"),
    pytest.param("    insecure_options: [none]\n", id="insecure-none-alone"),
    pytest.param("    insecure_options: [all-run]\n    trust_prefix: example.com/app\n",
                 id="trust-with-run-options"),
    pytest.param("    port_map: {a: 80, b: \"443\", c: 53-udp}\n"
                 "  resources: {ports: {a: {}, b: {}, c: {static: 5353}}}\n"
                 "  update: {order: stop-first}\n", id="port-map-forms"),
    pytest.param("    port_map: {http: 80-tcp}\n  resources: {ports: {http: {}}}\n"
                 "  update: {order: start-first}\n", id="start-first-dynamic"),
    pytest.param('  constraints:\n'
                 '    - {attribute: "${meta.gpu}", operator: is_set}\n'
                 '    - {attribute: "${attr.kernel.release}", operator: regexp, value: "^6"}\n'
                 '    - {attribute: "${driver.rkt.version}", operator: semver,'
                 ' value: ">= 1.27"}\n',
                 id="constraints"),
    pytest.param("  stage1: https://example.com/stage1-fly.aci\n", id="stage1-url"),
    pytest.param("  stage1: /usr/lib/rkt/stage1-images/stage1-fly.aci\n", id="stage1-path"),
    pytest.param("  restart: {policy: never, initial_delay: 250ms, max_delay: 1h30m}\n",
                 id="durations"),
    pytest.param("  kill_timeout: 0s\n", id="kill-timeout-zero"),
    pytest.param("  env: {EMPTY: \"\", _UNDERSCORE: x, lower: y}\n", id="env-names"),
    pytest.param("  constraints: []\n    \n", id="empty-list"),
]  # fmt: skip


@pytest.mark.parametrize("tail", VALID_VARIANTS)
def test_valid_variants_parse(tail: str) -> None:
    spec = parse_manifest(MINIMAL + tail, source="m.yaml")
    assert spec.name == "web"


def test_a_null_port_is_dynamic_and_numbers_in_port_map_become_strings() -> None:
    spec = parse_manifest(
        MINIMAL + "    port_map: {http: 80}\n  resources:\n    ports:\n      http:\n",
        source="m.yaml",
    )
    assert spec.resources.ports == (PortRequest(label="http", static=None),)
    assert dict(spec.port_map) == {"http": "80"}


def test_a_float_port_number_becomes_an_integer_string() -> None:
    spec = parse_manifest(
        MINIMAL + "    port_map: {http: 80.0}\n  resources: {ports: {http: {static: 8080.0}}}\n",
        source="m.yaml",
    )
    assert dict(spec.port_map) == {"http": "80"}
    assert spec.resources.ports == (PortRequest(label="http", static=8080),)


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan"])
def test_infinite_cpu_is_an_error_not_a_crash(value: str) -> None:
    (problem,) = problems_of(MINIMAL + f"  resources: {{cpu: {value}}}\n")
    assert problem.path == "spec.resources.cpu"
    assert "expected a string" in problem.message


def test_text_input_bom_and_crlf_are_accepted() -> None:
    crlf = "\ufeff" + MINIMAL.replace("\n", "\r\n")
    assert parse_manifest(crlf, source="m.yaml") == parse_manifest(MINIMAL, source="m.yaml")
    assert parse_manifest(crlf.encode(), source="m.yaml").name == "web"


def test_yaml_anchors_within_the_caps_are_fine() -> None:
    text = MINIMAL + '    args: [&p "--port", *p]\n'
    assert parse_manifest(text, source="m.yaml").args == ("--port", "--port")


# --- spec hash ------------------------------------------------------------------------------


COSMETIC = [
    pytest.param(FULL.replace("# DNS-1123 label", "# renamed"), id="comment"),
    pytest.param("# leading comment\n" + FULL + "\n\n# trailing\n", id="extra-comments"),
    pytest.param(
        FULL.replace(
            "apiVersion: rktctl.io/v1\nkind: Task\n", "kind: Task\napiVersion: rktctl.io/v1\n"
        ),
        id="top-level-key-order",
    ),
    pytest.param(FULL.replace("{policy: always, initial_delay: 10s,",
                              "{initial_delay: 10s, policy: always,"),
                 id="nested-key-order"),
    pytest.param(FULL.replace("env: {REDIS_MODE: standalone}",
                              "env:\n    REDIS_MODE: \"standalone\""),
                 id="flow-vs-block-and-quotes"),
    pytest.param(FULL.replace("labels: {tier: cache}", "labels: {tier: db, team: infra}"),
                 id="labels"),
    pytest.param(FULL.replace("initial_delay: 10s", "initial_delay: 10000ms"), id="same-duration"),
    pytest.param(FULL.replace("memory: 256Mi", "memory: 0.25Gi"), id="same-memory"),
    pytest.param(FULL.replace("cpu: 500m", "cpu: \"0.5\""), id="same-cpu"),
    pytest.param(FULL.replace("db: \"6379-tcp\", metrics: 9121", "metrics: \"9121\", db: 6379-tcp"),
                 id="port-map-order-and-number-spelling"),
    pytest.param(FULL.replace("      metrics: {}\n", "      metrics:\n"), id="null-port"),
]  # fmt: skip


@pytest.mark.parametrize("variant", COSMETIC)
def test_cosmetic_edits_keep_the_spec_hash(variant: str) -> None:
    assert (
        parse_manifest(variant, source="other/name.yaml").spec_hash
        == parse_manifest(FULL, source="desired/redis.yaml").spec_hash
    )


CHANGES = [
    ("name: redis ", "name: redis2 "),
    ("image: docker://redis:3.2", "image: docker://redis:3.3"),
    ("command: redis-server", "command: /usr/bin/redis-server"),
    ('args: ["--port", "${RKTCTL_PORT_db}"]', 'args: ["${RKTCTL_PORT_db}", "--port"]'),
    ("trust_prefix: coreos.com/etcd", "trust_prefix: coreos.com/redis"),
    ("insecure_options: [tls, http]", "insecure_options: [tls]"),
    ('dns_servers: ["10.0.0.2"]', 'dns_servers: ["10.0.0.3"]'),
    ("dns_search_domains: [example.com]", "dns_search_domains: [example.org]"),
    ("net: [default]", "net: [default-restricted]"),
    ('db: "6379-tcp"', 'db: "6380-tcp"'),
    ("debug: false", "debug: true"),
    ("no_overlay: false", "no_overlay: true"),
    ('"/etc/redis:/etc/redis:readOnly"', '"/etc/redis:/etc/redis"'),
    ('"/srv/redis:/data"', '"/srv/redis2:/data"'),
    ("group: redis", "group: nogroup"),
    ("user: redis", "user: nobody"),
    ("REDIS_MODE: standalone", "REDIS_MODE: cluster"),
    ("cpu: 500m", "cpu: 501m"),
    ("memory: 256Mi", "memory: 257Mi"),
    ("static: 6379", "static: 6380"),
    ("policy: always", "policy: on-failure"),
    ("max_delay: 5m", "max_delay: 6m"),
    ("stable_after: 1h", "stable_after: 2h"),
    ("kill_timeout: 30s", "kill_timeout: 31s"),
    ("stage1: coreos.com/rkt/stage1-fly:1.30.0", "stage1: coreos.com/rkt/stage1-coreos:1.30.0"),
    ('value: "1.27.0"', 'value: "1.28.0"'),
]


@pytest.mark.parametrize(("old", "new"), CHANGES, ids=[c[1] for c in CHANGES])
def test_every_spec_field_changes_the_hash(old: str, new: str) -> None:
    assert old in FULL
    changed = parse_manifest(FULL.replace(old, new), source="desired/redis.yaml")
    assert changed.spec_hash != parse_manifest(FULL, source="desired/redis.yaml").spec_hash


def test_the_change_table_touches_every_hashed_field() -> None:
    """A new TaskSpec field must go into compute_spec_hash and into CHANGES."""
    base = parse_manifest(FULL, source="x.yaml")
    touched: set[str] = set()
    for old, new in CHANGES:
        changed = parse_manifest(FULL.replace(old, new), source="x.yaml")
        touched |= {
            f.name
            for f in dataclasses.fields(TaskSpec)
            if getattr(changed, f.name) != getattr(base, f.name)
        }
    untouched = {f.name for f in dataclasses.fields(TaskSpec)} - touched
    # labels, source, suspend and pull_policy (test_imagefetch.py) are not hashed; FULL has
    # a static port, so update_order is covered by the next test; extra_args by
    # tests/unit/test_extraargs.py; FULL has no health check: tests/unit/test_health_spec.py;
    # the rollout timing of `update` is not hashed (tests/unit/test_rollout_decision.py), nor
    # is `reload` (tests/unit/test_manifest_reload.py).
    assert untouched == {
        "source", "labels", "update_order", "suspend", "extra_prepare_args", "extra_run_args",
        "health", "pull_policy", "min_healthy_time_s", "healthy_deadline_s", "auto_revert",
        "reload",
    }  # fmt: skip


def test_update_order_changes_the_hash() -> None:
    spec = parse_manifest(MINIMAL, source="m.yaml")
    flipped = dataclasses.replace(spec, update_order=UpdateOrder.START_FIRST)
    assert compute_spec_hash(flipped) != spec.spec_hash


def test_the_hash_ignores_source_labels_and_the_stored_hash() -> None:
    spec = parse_manifest(FULL, source="a.yaml")
    other = dataclasses.replace(
        spec, source="b.yaml", labels=frozen_map({"x": "y"}), spec_hash=SpecHash("sha256:0")
    )
    assert compute_spec_hash(other) == spec.spec_hash


def test_content_hash_is_sha256_of_the_bytes() -> None:
    assert content_hash(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert content_hash(b"a") != content_hash(b"a ")


# --- quantities and durations -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "millis"),
    [("500m", 500), ("1m", 1), ("2", 2000), ("1.5", 1500), ("0.25", 250), ("0.001", 1),
     ("99", 99000), ("64000m", 64000)],
)  # fmt: skip
def test_parse_cpu(text: str, millis: int) -> None:
    assert parse_cpu(text) == millis


@pytest.mark.parametrize(
    ("text", "hint"),
    [("0m", "zero"), ("0", "zero"), ("0.0001", "finer than 1m"), ("500M", 'write "500m"'),
     ("100", 'write "100m"'), ("2cores", "not a CPU quantity"), ("", "not a CPU quantity"),
     ("-1", "not a CPU quantity"), ("1.5m", "not a CPU quantity")],
)  # fmt: skip
def test_parse_cpu_rejects_with_advice(text: str, hint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(hint)):
        parse_cpu(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [("256Mi", 256 << 20), ("1Gi", 1 << 30), ("1.5Gi", 1536 << 20), ("4Ki", 4096),
     ("2Ti", 2 << 40), ("1k", 1000), ("128M", 128 * 10**6), ("1G", 10**9), ("3T", 3 * 10**12),
     ("0.5Ki", 512)],
)  # fmt: skip
def test_parse_memory(text: str, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize(
    ("text", "hint"),
    [("256", 'no unit; write "256Mi"'), ("256MB", 'write "256M"'), ("256MiB", 'write "256Mi"'),
     ("1gb", 'write "1G"'), ("1gi", 'write "1Gi"'), ("1K", 'write "1k"'), ("256m", "milli"),
     ("1.0001k", "whole number of bytes"), ("lots", "not a memory quantity"),
     ("1Pi", "unknown unit"), ("-1Mi", "not a memory quantity")],
)  # fmt: skip
def test_parse_memory_rejects_with_advice(text: str, hint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(hint)):
        parse_memory(text)


@pytest.mark.parametrize(
    ("size", "text"),
    [(256 << 20, "256Mi"), (1 << 30, "1Gi"), (10**9, "1G"), (1000, "1k"), (4096, "4Ki"),
     (1536 << 20, "1536Mi"), (2 << 40, "2Ti"), (5 * 10**12, "5T"), (1001, "1001"), (0, "0"),
     (3 * 10**6, "3M")],
)  # fmt: skip
def test_format_memory_picks_the_largest_exact_unit(size: int, text: str) -> None:
    assert format_memory(size) == text
    if text[-1].isalpha():
        assert parse_memory(text) == size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("5m", 300.0), ("1h30m", 5400.0), ("250ms", 0.25), ("1.5h", 5400.0),
     ("0s", 0.0), ("100us", 0.0001), ("100µs", 0.0001), ("10ns", 1e-8), ("1m30s", 90.0)],
)  # fmt: skip
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "hint"),
    [("10", 'no unit; write "10s"'), ("2d", 'write "48h"'), ("", "not a duration"),
     ("-5s", "not a duration"), ("5 s", "not a duration"), ("5sec", "not a duration"),
     ("1h30", "not a duration")],
)  # fmt: skip
def test_parse_duration_rejects_with_advice(text: str, hint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(hint)):
        parse_duration(text)


# --- variables, paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [("no variables", []), ("${a}", [(0, "a")]), ("x${a}y${b.c}", [(1, "a"), (6, "b.c")]),
     ("$${a}", []), ("$$${a}", []), ("${a", [(0, None)]), ("$ {a}", []),
     ("${}", [(0, "")]), ("$$${a}${", [(6, None)])],
)  # fmt: skip
def test_iter_variables(text: str, found: list[tuple[int, str | None]]) -> None:
    assert list(iter_variables(text)) == found


@pytest.mark.parametrize(
    ("path", "text"),
    [((), ""), (("spec", "env", "HOME"), "spec.env.HOME"), (("a", 0, 1), "a[0][1]"),
     (("metadata", "labels", "app.io/name"), 'metadata.labels["app.io/name"]'),
     (("ports", "1"), 'ports["1"]'), (("x", "a b"), 'x["a b"]')],
)  # fmt: skip
def test_format_path(path: tuple[str | int, ...], text: str) -> None:
    assert format_path(path) == text


# --- guess_name -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name"),
    [
        pytest.param(MINIMAL.encode(), "web", id="valid"),
        pytest.param(b"metadata:\n  name: web\nspec: [unclosed\n", "web", id="broken-yaml"),
        pytest.param(b"metadata:\n  labels: {a: b}\n  name: 'web' # x\nkind: Task\nkind: T\n",
                     "web", id="duplicate-keys-quoted-name"),
        pytest.param(b"kind: Task\nmetadata: {name: api, labels: {a: b}}\nspec: [\n", "api",
                     id="flow-metadata-broken"),
        pytest.param(b"apiVersion: v2\nmetadata:\n  name: web\nspec: 3\n", "web",
                     id="invalid-spec"),
        pytest.param(b"metadata:\n  name: Web_1\n", None, id="not-a-task-name"),
        pytest.param(b"metadata:\n  labels:\n    name: web\n  x: [\n", None, id="nested-name"),
        pytest.param(b"spec:\n  name: web\n  x: [\n", None, id="name-outside-metadata"),
        pytest.param(b"", None, id="empty"),
        pytest.param(bytes(range(256)), None, id="binary"),
        pytest.param(b"metadata:\n  name: web\n" + b"#" * MAX_BYTES, "web", id="huge"),
    ],
)  # fmt: skip
def test_guess_name(data: bytes, name: str | None) -> None:
    assert guess_name(data) == name


# --- build_desired --------------------------------------------------------------------------


def manifest(name: str, **replace: str) -> bytes:
    text = MINIMAL.replace("name: web", f"name: {name}")
    for old, new in replace.items():
        text = text.replace(old, new)
    return text.encode()


def test_build_desired_sorts_files_into_tasks_invalid_unnamed_and_duplicates() -> None:
    broken_db = b"metadata:\n  name: db\nspec: [\n"
    files = [
        ("d/web.yaml", manifest("web")),
        ("d/db.yaml", broken_db),
        ("d/junk.yaml", b"\x00\x01"),
        ("d/a.yaml", manifest("api")),
        ("d/b.yaml", manifest("api", **{"nginx:1.13": "nginx:1.14"})),
        ("d/c.yaml", b"metadata:\n  name: cache\nspec: [\n"),
        ("d/c2.yaml", manifest("cache")),
    ]
    state = build_desired(files, ignored=["d/web.yaml~"], dir_missing=False, revision="abc123")
    web = parse_manifest(manifest("web"), source="d/web.yaml")
    assert set(state.tasks) == {"web", "db"}
    assert state.tasks[TaskName("web")] == web
    db = state.tasks[TaskName("db")]
    assert isinstance(db, Invalid)
    assert (db.name, db.source, db.content_hash) == ("db", "d/db.yaml", content_hash(broken_db))
    assert db.messages[0].startswith("d/db.yaml:4: invalid YAML")
    assert dict(state.duplicates) == {
        "api": ("d/a.yaml", "d/b.yaml"),
        "cache": ("d/c.yaml", "d/c2.yaml"),
    }
    (junk,) = state.unnamed_invalid
    assert (junk.name, junk.source) == ("", "d/junk.yaml")
    assert (state.ignored, state.dir_missing, state.revision) == (("d/web.yaml~",), False, "abc123")
    assert not state.empty


def test_build_desired_of_nothing_is_empty_and_passes_dir_missing_through() -> None:
    state = build_desired([], dir_missing=True)
    assert state == DesiredState(dir_missing=True, revision=state.revision)
    assert state.empty


def test_the_default_revision_depends_on_sources_and_contents_only() -> None:
    a = [("x.yaml", manifest("x")), ("y.yaml", manifest("y"))]
    rev = build_desired(a).revision
    assert re.fullmatch(r"sha256:[0-9a-f]{16}", rev)
    assert build_desired(list(reversed(a))).revision == rev
    assert build_desired([a[0], ("y.yaml", manifest("y") + b"\n")]).revision != rev
    assert build_desired([a[0], ("z.yaml", manifest("y"))]).revision != rev


def test_build_desired_uses_the_given_parse_function() -> None:
    seen: list[str] = []

    def parse(data: bytes, source: str) -> TaskSpec:
        seen.append(source)
        return parse_manifest(data, source=source)

    state = build_desired([("w.yaml", manifest("web"))], parse=parse)
    assert seen == ["w.yaml"]
    assert list(state.tasks) == ["web"]


def test_duplicate_names_ignores_unnamed_and_sorts_sources() -> None:
    named = [("b", TaskName("x")), ("a", TaskName("x")), ("c", None), ("d", TaskName("y"))]
    assert duplicate_names(named) == {"x": ("a", "b")}


# --- robustness -------------------------------------------------------------------------------


def assert_only_manifest_error(data: bytes | str) -> None:
    try:
        spec = parse_manifest(data, source="fuzz.yaml")
    except ManifestError as exc:
        assert exc.messages
        assert all(m.startswith("fuzz.yaml") for m in exc.messages)
    else:
        assert spec.spec_hash == compute_spec_hash(spec)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes_raise_nothing_but_manifest_error(data: bytes) -> None:
    assert_only_manifest_error(data)
    assert guess_name(data) is None or isinstance(guess_name(data), str)


YAMLISH = st.text(
    alphabet=st.sampled_from(list("abcz019 :-[]{},'\"#&*!|>?%@`\n\t.\\$~<=")), max_size=300
)


@settings(max_examples=400, deadline=None)
@given(YAMLISH)
def test_random_yaml_text_raises_nothing_but_manifest_error(text: str) -> None:
    assert_only_manifest_error(text)
    guess_name(text.encode())


SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["500m", "256Mi", "10s", "${RKTCTL_PORT_db}", "/a:/b", "host", "6379-tcp"]),
)  # fmt: skip
KEYS = st.one_of(
    st.sampled_from(["apiVersion", "kind", "metadata", "spec", "config", "image", "name",
                     "resources", "ports", "port_map", "cpu", "memory", "env", "volumes",
                     "net", "dns_servers", "restart", "policy", "constraints", "update", "db"]),
    st.text(max_size=8),
)  # fmt: skip


def _containers_of(inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    # A named function, not a lambda: newer hypothesis releases inspect the extend function's
    # source to check that it recurses, and cannot always find a lambda's.
    return st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5)


DOCS = st.recursive(SCALARS, _containers_of, max_leaves=25)


@settings(max_examples=150, deadline=None)
@given(DOCS)
def test_random_documents_raise_nothing_but_manifest_error(doc: object) -> None:
    assert_only_manifest_error(json.dumps(doc))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_valid_manifests_raise_nothing_but_manifest_error(data: st.DataObject) -> None:
    lines = FULL.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "dup", "scalar"]))
        if action == "drop":
            del lines[i]
        elif action == "dup":
            lines.insert(i, lines[i])
        else:
            head, sep, _ = lines[i].partition(": ")
            value = json.dumps(data.draw(SCALARS))
            lines[i] = f"{head}{sep}{value}\n" if sep else lines[i]
        if not lines:
            break
    assert_only_manifest_error("".join(lines))
