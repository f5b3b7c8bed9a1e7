"""Issue 15 item 4 end to end: a changed config file reaches the app as a signal.

The app traps SIGHUP and copies its config file aside each time (`seen.N`), so the
test reads what the app did from the host, with no reliance on its output reaching a
log. The pod must be the same pod throughout: reloaded, never replaced.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.e2e.harness import Harness, wait_for

pytestmark = pytest.mark.e2e

APP = (
    'trap \'n=$((n+1)); cp "$CONF/app.conf" "$CONF/seen.$n"\' HUP; n=0; '
    'echo up > "$CONF/ready"; while :; do sleep 0.2 & wait $!; done'
)


def conf_dir(h: Harness) -> Path:
    return h.state_dir / "tasks" / "web" / "conf"


def write_atomically(path: Path, text: str) -> None:
    """As a config tool does: a temp file renamed over the old one."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.rename(path)


def reload_manifest(h: Harness, extra: str = "") -> str:
    # The fake runs the app on the host, without the mount: it reads the host path.
    conf = str(conf_dir(h)) if h.backend.is_fake else "/conf"
    text = h.manifest("web", command="/bin/sh", args=("-c", APP), env={"CONF": conf})
    volumes = '    volumes: ["conf:/conf"]\n'
    reload = "  reload:\n    signal: HUP\n    on: [conf/app.conf]\n" + extra
    return text.replace("  kill_timeout:", volumes + "  kill_timeout:") + reload


def start_reloadable_app(h: Harness) -> str:
    conf = conf_dir(h)
    conf.mkdir(parents=True)
    write_atomically(conf / "app.conf", "v1\n")
    h.start()
    h.write_manifest("web.yaml", reload_manifest(h))
    pod = wait_for(lambda: h.running("web"), timeout=60, what="web running")[0]["name"]
    # The app has set its trap: a signal now is handled, not fatal.
    wait_for((conf / "ready").exists, timeout=60, what="the app ready")
    return str(pod)


def test_a_changed_config_file_signals_the_app_and_keeps_its_pod(h: Harness) -> None:
    pod = start_reloadable_app(h)
    conf = conf_dir(h)
    assert not list(conf.glob("seen.*")), "signalled before anything changed"

    write_atomically(conf / "app.conf", "v2\n")
    wait_for((conf / "seen.1").exists, timeout=30, what="the app signalled")
    assert (conf / "seen.1").read_text() == "v2\n"
    write_atomically(conf / "app.conf", "v3\n")
    wait_for((conf / "seen.2").exists, timeout=30, what="the app signalled again")
    assert (conf / "seen.2").read_text() == "v3\n"

    assert [p["name"] for p in h.running("web")] == [pod]
    assert len(h.calls("prepare")) == 1, "the pod was replaced"
    signalled = [e for e in h.events("pod_signalled") if e.get("pod_uuid") == pod]
    assert [e["files"] for e in signalled] == [[str(conf / "app.conf")]] * 2
    assert all(e["signal"] == "HUP" and e["reason"] == "files_changed" for e in signalled)
    doc = wait_for(
        lambda: (d := h.task_status("web")) and d["history"][0]["result"] == "reloaded" and d,
        what="the reload in the task's history",
    )
    assert doc["phase"] == "Running"
    assert doc["history"][0]["message"] == (
        f"sent SIGHUP to pod {pod[:8]} ({conf / 'app.conf'} changed)"
    )
    wait_for(
        lambda: (
            'rktctl_actions_total{action="signal",result="ok"} 2.0'
            in (h.status_dir / "rktctl.prom").read_text()
        ),
        what="both signals counted in the textfile",
    )


def test_report_only_says_it_would_signal_and_a_restart_still_delivers(h: Harness) -> None:
    h.backend.skip_unless_fake("the reload bookkeeping across a restart; signalling is above")
    pod = start_reloadable_app(h)
    conf = conf_dir(h)
    h.write_config(mode="report-only")
    h.signal(signal.SIGHUP)
    wait_for(lambda: h.events("config_reloaded") or None, timeout=30, what="the reload")
    write_atomically(conf / "app.conf", "v2\n")
    doc = wait_for(
        lambda: (d := h.task_status("web")) and "would send SIGHUP" in d["message"] and d,
        timeout=30,
        what="web saying it would signal",
    )
    assert f"pod {pod[:8]} (files_changed)" in doc["message"]
    assert not (conf / "seen.1").exists()

    # Down while enforcing again: the record of what the app read survives the restart.
    assert h.stop() == 0
    h.start(mode="enforce")
    wait_for((conf / "seen.1").exists, timeout=30, what="the app signalled")
    assert (conf / "seen.1").read_text() == "v2\n"
    assert [p["name"] for p in h.running("web")] == [pod]
