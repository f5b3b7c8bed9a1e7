"""What rkt does with a missing volume host path, in a host pod's boot window, and with --port.

Integration tier, over every backend (fake, real fly, real host): the facts behind three
rktctl fixes (issue 10), so the fake cannot drift from real rkt on them.
- A host volume whose source does not exist: `prepare` accepts it; `run-prepared` refuses
  it. fly: exit 254 at once, `run: stat of host path X: stat X: ...`, the pod `exited`
  without ever starting. nspawn-based stage1s (host; the fake's default flavor is one):
  the pod starts (a pid, a start time), then systemd-nspawn fails, `rkt run-prepared`
  exits 1 and no exit code is recorded.
- The boot window: a pod reads `running` before stage1 writes its pid file (host: while
  systemd boots in nspawn, ~0.7 s); `rkt stop` (and `--force`) then exits 254 with
  `error reading pid: open ppid: no such file or directory`. Once the pid is there,
  stop works.
- `--port=NAME:HOSTPORT`: host stage1 (own network namespace) forwards the host port to
  the app's port; fly shares the host's network and silently ignores it: the app
  listens on its own port on the host and nothing listens on HOSTPORT.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.backends import BUSYBOX, Backend, free_port, http_answer
from tests.contract.rktcli import Rkt
from tests.e2e.harness import wait_for
from tests.fakes import fakerkt, make_aci

pytestmark = pytest.mark.timeout(180)


def server_app(backend: Backend, port: int) -> tuple[str, ...]:
    """App flags that serve HTTP on `port` inside the pod (the fake runs apps on the host)."""
    if backend.is_fake:
        code = (
            "import http.server as h, sys; "
            "h.HTTPServer(('127.0.0.1', int(sys.argv[1])), h.BaseHTTPRequestHandler)"
            ".serve_forever()"
        )
        return (f"--exec={sys.executable}", "--", "-c", code, str(port))
    return ("--exec=/bin/httpd", "--", "-f", "-p", str(port))


@pytest.fixture
def web_aci(backend: Backend, tmp_path: Path) -> tuple[str, int]:
    """An ACI declaring one TCP port (a free one, so a fly or fake app cannot collide)."""
    port = free_port()
    if not backend.is_fake and not BUSYBOX.exists():
        pytest.skip(f"{backend}: the test image needs busybox-static")
    files = {} if backend.is_fake else {"bin/busybox": BUSYBOX.read_bytes()}
    links = {} if backend.is_fake else {f"bin/{a}": "busybox" for a in ("httpd", "sleep")}
    path = make_aci.build_aci(
        tmp_path / "web.aci",
        name="example.com/contract-web",
        version="1.0.0",
        exec_=("/bin/sleep", "3600"),
        env={"PATH": "/bin"},
        ports={f"{port}-tcp": port},
        files=files,
        links=links,
    )
    return path, port


def _prepare(rkt: Rkt, image: str, *pod_flags: str, app: tuple[str, ...] = ()) -> str:
    """`prepare --quiet` with the backend's stage1, pod flags before the image, app flags after."""
    stage1 = () if any(f.startswith("--stage1-") for f in pod_flags) else rkt.backend.stage1_flags()
    out = rkt("--insecure-options=image", "prepare", "--quiet", *stage1, *pod_flags, image, *app,
              timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return [ln for ln in out.stdout.splitlines() if fakerkt.is_uuid(ln.strip())][-1].strip()


def _pod(rkt: Rkt, uuid: str) -> dict:
    return next(p for p in rkt.pods() if p["name"] == uuid)


@pytest.fixture
def launch(rkt: Rkt, tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Start `rkt run-prepared UUID` detached; afterwards stop every pod, then reap them."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(uuid: str) -> subprocess.Popen[bytes]:
        proc = rkt.backend.run_detached(rkt.dir, uuid, tmp_path / f"{uuid[:8]}.log")
        procs.append(proc)
        wait_for(lambda: _pod(rkt, uuid)["state"] != "prepared", what=f"{uuid} running")
        return proc

    yield start
    rkt.backend.cleanup(rkt.dir)
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=60)


# --- a missing volume host path --------------------------------------------------------


def test_a_missing_host_path_is_refused_by_run_prepared_not_prepare(
    rkt: Rkt, tmp_path: Path
) -> None:
    missing = tmp_path / "nope" / "data"
    uuid = _prepare(
        rkt,
        rkt.backend.image("contract"),
        f"--volume=data,kind=host,source={missing},readOnly=false",
        "--mount=volume=data,target=/data",
    )
    assert _pod(rkt, uuid)["state"] == "prepared"

    result = rkt("--insecure-options=image", "run-prepared", uuid, timeout=120)

    pod = _pod(rkt, uuid)
    assert pod["state"] == "exited"
    assert all(app.get("exit_code") is None for app in pod["apps"])
    if rkt.backend.flavor == "fly":
        assert result.returncode == 254
        assert f"run: stat of host path {missing}: stat {missing}: no such file or directory" in (
            result.stderr.splitlines()
        )
        assert "started_at" not in pod, "fly refuses before anything starts"
    else:  # systemd-nspawn based: the pod starts, then nspawn cannot bind the path
        assert result.returncode == 1
        assert f"Failed to stat {missing}: No such file or directory" in result.stderr.splitlines()
        assert pod.get("started_at"), "the pod started before nspawn failed"


# --- the boot window ---------------------------------------------------------------------


def test_stop_in_the_boot_window_fails_until_the_pid_file_exists(
    rkt: Rkt, launch: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    backend = rkt.backend
    backend.skip_if(
        backend.flavor == "fly",
        "fly's window (running, no pid yet) lasts ~40 ms: too short to hit on purpose",
    )
    if backend.is_fake:
        # The fake's default flavor boots at once; a test opens the window on purpose.
        fakerkt.add_fault(rkt.dir, cmd="run-prepared", boot_s=3.0, times=1)
    uuid = _prepare(rkt, backend.image("contract"))
    launch(uuid)
    assert _pod(rkt, uuid)["state"] == "running"
    assert "started_at" not in _pod(rkt, uuid), "the boot window was missed"

    for force in ((), ("--force",)):
        refused = rkt("stop", *force, uuid)
        assert (refused.returncode, refused.stdout) == (254, "")
        assert refused.stderr == (
            "error reading pid: open ppid: no such file or directory\n"
            f'stop: error stopping "{uuid}": exit status 254\n'
            "stop: failed to stop 1 pod(s)\n"
        )
        assert _pod(rkt, uuid)["state"] == "running"

    wait_for(lambda: _pod(rkt, uuid).get("started_at"), what="the pid file", timeout=60)
    stopped = rkt("stop", "--force", uuid)
    assert (stopped.returncode, stopped.stdout) == (0, f'"{uuid}"\n')
    wait_for(lambda: _pod(rkt, uuid)["state"] == "exited", what="exited", timeout=60)


# --- --port: forwarded by stage1s with their own network, ignored by fly -------------------


def test_port_is_forwarded_with_an_own_network_and_ignored_by_fly(
    rkt: Rkt, web_aci: tuple[str, int], launch: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    image, app_port = web_aci
    host_port = free_port()
    uuid = _prepare(
        rkt, image, f"--port={app_port}-tcp:{host_port}", app=server_app(rkt.backend, app_port)
    )
    launch(uuid)

    if rkt.backend.flavor == "fly":
        # The app listens on the host's own port; the requested host port stays closed.
        wait_for(lambda: http_answer(app_port), what=f"the app on host port {app_port}")
        assert http_answer(host_port) is None
    else:
        # Generous: a host pod boots systemd before httpd runs, slow on a loaded 2-CPU machine.
        wait_for(
            lambda: http_answer(host_port), timeout=60, what=f"host port {host_port} forwarded"
        )


def test_the_fake_fly_flavor_forwards_nothing(
    rkt: Rkt, web_aci: tuple[str, int], launch: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    rkt.backend.skip_unless_fake("real fly is covered by the test above")
    image, app_port = web_aci
    host_port = free_port()
    uuid = _prepare(
        rkt,
        image,
        "--stage1-name=coreos.com/rkt/stage1-fly:1.30.0",
        f"--port={app_port}-tcp:{host_port}",
        app=server_app(rkt.backend, app_port),
    )
    launch(uuid)
    wait_for(lambda: http_answer(app_port), what=f"the app on host port {app_port}")
    assert http_answer(host_port) is None
