"""Issue 15 end to end: `spec.suspend`, `mode = "report-only"` and `spec.extra_args`.

Suspend and report-only must run no rkt command that changes a pod (checked in the
call log, which the proxy keeps on real rkt too) while status says what would happen;
resuming must apply the pending change and must not replace a pod for the toggle alone.
extra_args must reach the pod (its working directory, seen in the pod's output).
"""

from __future__ import annotations

import signal
from typing import Any

import pytest

from tests.e2e.harness import Harness, wait_for

pytestmark = pytest.mark.e2e

SUSPEND = "  suspend: true\n"


def _one_booted(h: Harness, task: str) -> dict[str, Any]:
    pods = wait_for(
        lambda: [p for p in h.running(task) if p.get("started_at")],
        timeout=60,
        what=f"a booted running pod of {task}",
    )
    assert len(pods) == 1, pods
    return pods[0]


def _status(h: Harness, task: str, phase: str, words: str = "") -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        doc = h.task_status(task)
        if doc and doc["phase"] == phase and words in doc["message"]:
            return doc
        return None

    return wait_for(ready, timeout=60, what=f"{task} {phase} {words!r}")


def _changing_calls(h: Harness, task: str) -> list[list[str]]:
    """The `rkt prepare` calls of `task` (stop/rm are checked by pod UUID)."""
    stamp = f"--user-annotation=rktctl.io/task={task}"
    return [a for a in h.calls("prepare") if stamp in a]


def test_suspend_withholds_a_change_and_resume_applies_it_without_replacing_for_the_toggle(
    h: Harness,
) -> None:
    h.start()
    h.write_manifest("web.yaml", h.manifest("web"))
    uuid = _one_booted(h, "web")["name"]
    prepares = len(_changing_calls(h, "web"))

    # Suspend only: nothing to do, and resuming replaces nothing (suspend is not hashed).
    h.write_manifest("web.yaml", h.manifest("web", extra_spec=SUSPEND))
    _status(h, "web", "Suspended", "nothing to do")
    h.write_manifest("web.yaml", h.manifest("web"))
    doc = _status(h, "web", "Running")
    assert doc["pod"]["uuid"] == uuid

    # A change while suspended: reported with the exact pod, not applied.
    h.write_manifest("web.yaml", h.manifest("web", args=("3599",), extra_spec=SUSPEND))
    doc = _status(h, "web", "Suspended", f"would stop pod {uuid[:8]} (spec_changed)")
    assert "start a pod (spec_changed)" in doc["message"]
    assert doc["pod"]["uuid"] == uuid
    assert [p["name"] for p in h.running("web")] == [uuid]
    assert len(_changing_calls(h, "web")) == prepares
    assert not [a for a in h.calls() if uuid in a and ("stop" in a or "rm" in a)]
    metrics = (h.status_dir / "rktctl.prom").read_text()
    assert 'rktctl_withheld_actions{action="start"} 1.0' in metrics

    # Resume: the pending change is applied.
    h.write_manifest("web.yaml", h.manifest("web", args=("3599",)))
    new = wait_for(
        lambda: [p for p in h.running("web") if p["name"] != uuid and p.get("started_at")],
        timeout=90,
        what="the replacement pod",
    )
    assert len(new) == 1
    wait_for(lambda: not h.pods_of("web", "running") or [p["name"] for p in h.running("web")]
             == [new[0]["name"]], timeout=60, what="the old pod gone")  # fmt: skip


def test_report_only_mode_looks_without_touching_until_enforce_is_reloaded(h: Harness) -> None:
    h.start()
    h.write_manifest("keep.yaml", h.manifest("keep"))
    h.write_manifest("web.yaml", h.manifest("web"))
    keep = _one_booted(h, "keep")["name"]
    web = _one_booted(h, "web")["name"]

    h.write_config(mode="report-only")
    h.signal(signal.SIGHUP)
    wait_for(lambda: h.events("config_reloaded") or None, timeout=30, what="the reload")
    (h.desired / "web.yaml").unlink()
    h.write_manifest("new.yaml", h.manifest("new"))
    _status(h, "web", "Suspended", f"would stop pod {web[:8]} (not_desired)")
    doc = _status(h, "new", "Suspended", "mode is report-only")
    assert "would start a pod (missing)" in doc["message"]
    assert h.task_status("keep")["phase"] == "Running"  # type: ignore[index]
    assert [p["name"] for p in h.running("web")] == [web]
    assert not _changing_calls(h, "new")
    assert not [a for a in h.calls() if web in a and ("stop" in a or "rm" in a)]

    h.write_config(mode="enforce")
    h.signal(signal.SIGHUP)
    _one_booted(h, "new")
    wait_for(lambda: not [p for p in h.list_pods() if p["name"] == web] or None, timeout=60,
             what="the undeclared pod stopped and removed")  # fmt: skip
    assert [p["name"] for p in h.running("keep")] == [keep]


def test_extra_args_reach_the_pod(h: Harness) -> None:
    extra = (
        "  extra_args:\n"
        '    prepare: ["--working-dir=/proc", "--readonly-rootfs=false"]\n'
        # Not --dns-opt/--hosts-entry: on real fly they make rkt write /etc/resolv.conf or
        # /etc/hosts into the image, and the test image has no /etc (the pod fails to run).
        '    run_prepared: ["--hostname=web-box"]\n'
    )
    h.start()
    h.write_manifest(
        "web.yaml",
        h.manifest("web", command="/bin/sh", args=("-c", "pwd; exec sleep 3600"),
                   extra_spec=extra),
    )  # fmt: skip
    uuid = _one_booted(h, "web")["name"]
    (prepare,) = [a for a in h.calls("prepare") if "--working-dir=/proc" in a]
    # After the image (the ID of the fetch phase, behind --pull-policy=never): an app flag.
    image_at = prepare.index("--pull-policy=never") + 1
    assert prepare[image_at].startswith("sha512-")
    assert prepare.index("--working-dir=/proc") > image_at
    # run-prepared stays in the foreground as the pod's supervisor: its call is logged only
    # when it ends, so read the argv from the daemon's rkt_command event.
    (run,) = [e["argv"] for e in h.events("rkt_command") if "run-prepared" in e["argv"]]
    assert run[-2:] == ["--hostname=web-box", uuid]
    log = h.state_dir / "logs" / f"web-{uuid[:8]}.log"
    # The host stage1 prefixes the app's lines ("[  871.15] rktctl-test[6]: /proc").
    wait_for(
        lambda: (
            [x for x in log.read_text().splitlines() if x == "/proc" or x.endswith(": /proc")]
            or None
        ),
        timeout=30,
        what="pwd in the pod's output",
    )


def test_a_managed_or_privileged_extra_arg_never_reaches_rkt(h: Harness) -> None:
    h.backend.skip_unless_fake("validation and policy: no rkt command runs")
    h.start()
    bad = '  extra_args:\n    prepare: ["--cpu=2"]\n'
    h.write_manifest("bad.yaml", h.manifest("bad", extra_spec=bad))
    _status(h, "bad", "Invalid", "--cpu is set by rktctl from spec.resources.cpu")
    caps = '  extra_args:\n    prepare: ["--caps-retain=CAP_SYS_ADMIN"]\n'
    h.write_manifest("caps.yaml", h.manifest("caps", extra_spec=caps))
    _status(h, "caps", "Blocked", "allowed_extra_args")
    assert not [a for a in h.calls("prepare") if "--cpu=2" in a or "--caps-retain" in " ".join(a)]
