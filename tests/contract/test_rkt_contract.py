"""The rkt behaviour rktctl depends on, as scenarios any rkt 1.30 must pass (see conftest).

Integration tier. Only guaranteed behaviour is asserted (CONTRACT.md + transcripts):
JSON shapes and units, state names, exit codes, message prefixes, UUID resolution.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.contract.rktcli import Rkt

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STAMPS = (
    "--user-annotation=rktctl.io/task=web",
    "--user-label=rktctl.io/managed-by=rktctl",
)


def test_version_names_rkt_and_appc_versions(rkt: Rkt) -> None:
    out = rkt.ok("version")
    assert re.search(r"^rkt Version: \d+\.\d+\.\d+", out, re.M)
    assert re.search(r"^appc Version: \d+\.\d+\.\d+", out, re.M)


def test_an_empty_store_lists_null_and_a_header(rkt: Rkt) -> None:
    assert rkt.ok("list", "--format=json") == "null\n"
    assert rkt.ok("list").split("\t", 1)[0] == "UUID"
    assert rkt.ok("list", "--no-legend") == "\n"


def test_a_prepared_pod_in_list_json(rkt: Rkt, aci: str) -> None:
    uuid = rkt.prepare(aci, *STAMPS)
    (pod,) = rkt.pods()
    assert (pod["name"], pod["state"], pod["app_names"]) == (uuid, "prepared", ["contract-app"])
    app = pod["apps"][0]
    assert (app["name"], app["state"]) == ("contract-app", "created")
    assert app["user_annotations"] == {"rktctl.io/task": "web"}
    assert app["user_labels"] == {"rktctl.io/managed-by": "rktctl"}
    assert re.fullmatch(r"sha512-[0-9a-f]{64}", app["image_id"])
    # Units: pod times are seconds, app times nanoseconds (of the same instant).
    assert app["created_at"] // 1_000_000_000 == pod["created_at"]
    assert "started_at" not in pod
    assert "exit_code" not in app


def test_status_of_a_prepared_pod(rkt: Rkt, aci: str) -> None:
    uuid = rkt.prepare(aci)
    lines = rkt.ok("status", uuid).splitlines()
    assert lines[0] == "state=prepared"
    assert lines[1].startswith("created=")
    assert len(lines) == 2
    assert json.loads(rkt.ok("status", "--format=json", uuid)) == rkt.pods()[0]


def test_uuid_prefixes_and_uuid_files_resolve(rkt: Rkt, aci: str, tmp_path: Path) -> None:
    uuid = rkt.prepare(aci)
    full = rkt.ok("status", uuid)
    assert rkt.ok("status", uuid[:8]) == full
    uuid_file = tmp_path / "pod.uuid"
    uuid_file.write_text(uuid)
    assert rkt.ok("status", f"--uuid-file={uuid_file}") == full


def test_cat_manifest_carries_the_stamps(rkt: Rkt, aci: str) -> None:
    uuid = rkt.prepare(aci, *STAMPS)
    manifest = json.loads(rkt.ok("cat-manifest", uuid))
    assert manifest["acKind"] == "PodManifest"
    app = manifest["apps"][0]
    assert app["app"]["userAnnotations"] == {"rktctl.io/task": "web"}
    assert app["app"]["userLabels"] == {"rktctl.io/managed-by": "rktctl"}


def test_a_prepared_pod_cannot_be_stopped_but_can_be_removed(rkt: Rkt, aci: str) -> None:
    uuid = rkt.prepare(aci)
    stop = rkt("stop", uuid)
    assert stop.returncode == 254
    assert stop.stderr == f'stop: pod "{uuid}" is not running\nstop: failed to stop 1 pod(s)\n'
    removed = rkt("rm", uuid)
    assert (removed.returncode, removed.stdout) == (0, f'"{uuid}"\n')
    assert removed.stderr == f'rm: moving expired prepared pod "{uuid}" to garbage\n'
    gone = rkt("status", uuid)
    assert (gone.returncode, gone.stderr) == (
        254,
        f'status: problem retrieving pod: no matches found for "{uuid}"\n',
    )


def test_unknown_pods_and_usage_errors(rkt: Rkt) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    assert rkt("rm", missing).stderr == (
        f'rm: cannot get pod: no matches found for "{missing}"\n'
        "rm: failed to remove one or more pods\n"
    )
    assert rkt("stop", missing).returncode == 254
    flag = rkt("list", "--bogus")
    assert (flag.returncode, flag.stderr) == (254, "Error: unknown flag: --bogus\n\n")
    fmt = rkt("list", "--format=yaml")
    assert fmt.stderr.startswith(
        'Error: invalid argument "yaml" for --format=yaml: Invalid format option: yaml\n'
    )
    cmd = rkt("frobnicate")
    assert (cmd.returncode, cmd.stderr.splitlines()[0]) == (
        254,
        'Error: unknown command "frobnicate" for "rkt"',
    )


def test_gc_on_an_empty_store_does_nothing(rkt: Rkt) -> None:
    result = rkt("gc", "--grace-period=0s")
    assert (result.returncode, result.stdout) == (0, "")


def test_fetch_a_local_aci_and_list_it(rkt: Rkt, aci: str) -> None:
    short = rkt.ok("--insecure-options=image", "fetch", aci).strip()
    assert re.fullmatch(r"sha512-[0-9a-f]{32}", short)
    images = json.loads(rkt.ok("image", "list", "--format=json"))
    mine = [i for i in images if i["name"] == "example.com/contract-app:1.0.0"]
    assert len(mine) == 1
    assert mine[0]["id"].startswith(short)
    assert list(mine[0]) == ["id", "name", "import_time", "last_used_time", "size"]
