"""The JSON Schemas work from an installed wheel, not only from a source checkout.

Builds the wheel from a copy of the package sources (`python -m build --wheel`),
installs it with `pip install --no-deps --target`, and runs Python with only that
directory in front of the venv's site-packages (the dependencies), from a directory
outside the checkout. Takes a few seconds: one build per module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from controller.manifests import parse_manifest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "desired" / "web.yaml"


@pytest.fixture(scope="module")
def wheel_and_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in ("controller", "schemas"):
        # symlinks=True keeps controller/schemas -> ../schemas, as in a real checkout.
        shutil.copytree(
            ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy2(ROOT / "pyproject.toml", src)
    readme = ROOT / "README.md"
    if readme.exists():
        shutil.copy2(readme, src)
    else:  # pyproject names it; its content does not matter to this test
        (src / "README.md").write_text("rktctl\n", encoding="utf-8")
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(work / "dist"), str(src)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    (wheel,) = (work / "dist").glob("rktctl-*.whl")
    site = work / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
         "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stdout + install.stderr
    return wheel, site


def test_the_wheel_carries_the_schemas_as_real_files(wheel_and_site: tuple[Path, Path]) -> None:
    wheel, _site = wheel_and_site
    with zipfile.ZipFile(wheel) as archive:
        packaged = archive.read("controller/schemas/task.schema.json")
    assert json.loads(packaged) == json.loads((ROOT / "schemas" / "task.schema.json").read_text())


def run_installed(site: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RKTCTL_", "PYTHON"))}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=60, check=False,
    )  # fmt: skip


def test_validation_works_from_the_installed_copy(
    wheel_and_site: tuple[Path, Path], tmp_path: Path
) -> None:
    _wheel, site = wheel_and_site
    shutil.copy2(EXAMPLE, tmp_path / "web.yaml")
    script = textwrap.dedent(
        """
        import json, sys
        import controller, controller.manifests as manifests
        from controller.resources import load_schema
        schema = load_schema("task.schema.json")
        spec = manifests.parse_manifest(open("web.yaml", "rb").read(), source="web.yaml")
        try:
            manifests.parse_manifest(b"apiVersion: rktctl.io/v1\\nkind: Tsk\\n", source="x")
        except manifests.ManifestInvalidError as exc:
            errors = list(exc.messages)
        print(json.dumps({"package": controller.__file__, "title": schema["title"],
                          "hash": spec.spec_hash, "errors": errors}))
        """
    )
    done = run_installed(site, tmp_path, "-c", script)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert Path(result["package"]).is_relative_to(site)
    assert result["title"].startswith("rktctl task manifest")
    assert result["hash"] == parse_manifest(EXAMPLE.read_bytes(), source="x").spec_hash
    assert result["errors"] == [
        "x:1: metadata: required key is missing; add it",
        "x:1: spec: required key is missing; add it",
        'x:2: kind: must be "Task", not "Tsk"',
    ]


def test_the_installed_cli_validates(wheel_and_site: tuple[Path, Path], tmp_path: Path) -> None:
    _wheel, site = wheel_and_site
    shutil.copy2(EXAMPLE, tmp_path / "web.yaml")
    (tmp_path / "bad.yaml").write_text("apiVersion: rktctl.io/v1\n", encoding="utf-8")
    good = run_installed(site, tmp_path, "-m", "controller", "validate", "web.yaml")
    assert (good.returncode, good.stdout.split(" (")[0]) == (0, "ok  web.yaml"), good.stderr
    bad = run_installed(site, tmp_path, "-m", "controller", "validate", "bad.yaml")
    assert bad.returncode == 1
    assert bad.stdout.startswith("bad.yaml:1: kind: required key is missing")
