"""A pod whose program is missing from its image starts, then ends at once (issue 10).

Contract tier (see conftest): raw rkt, every backend. rktctl's status relies on what is
asserted here: such a pod is `exited` with a start time (it is the app that failed, not
the launch), the host stage1 records systemd's EXIT_EXEC (203) while fly records no exit
code, and the reason is in rkt's own output, which is all an operator gets.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import backends
from tests.contract.rktcli import Rkt
from tests.fakes import make_aci


@pytest.fixture
def image(rkt: Rkt, tmp_path: Path) -> str:
    """An image whose rootfs holds /bin/sh (real: busybox; the fake looks only at names)."""
    if not rkt.backend.is_fake:
        return backends.tests_image()
    return make_aci.build_aci(
        tmp_path / "sh.aci",
        name="example.com/sh",
        version="1.0.0",
        exec_=("/bin/sh", "-c", "sleep 3600"),
        files={"bin/busybox": b"#!/bin/sh\n"},
        links={"bin/sh": "busybox"},
    )


def test_a_program_missing_from_the_image_ends_the_pod_at_once(rkt: Rkt, image: str) -> None:
    uuid = rkt.prepare(image, "--exec=/bin/nonexistent")
    result = rkt("--insecure-options=image", "run-prepared", uuid, timeout=120)
    output = result.stdout + result.stderr
    (pod,) = rkt.pods()
    assert (pod["name"], pod["state"]) == (uuid, "exited")
    assert "started_at" in pod, pod
    app = pod["apps"][0]
    if rkt.backend.records_exit_codes:
        assert app.get("exit_code") in rkt.backend.recorded_exit_codes(203), output
        assert result.returncode == app.get("exit_code"), output
        assert 'Unable to open "/bin/nonexistent": No such file or directory' in output
    else:
        assert result.returncode == 254, output
        assert "exit_code" not in app
        assert 'run: can\'t execute "/bin/nonexistent": no such file or directory' in output
