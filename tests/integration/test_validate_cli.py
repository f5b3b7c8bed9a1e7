"""`rktctl validate`: files and directories, exit codes, human and JSON output, duplicates.

Runs `cli.main([...])` in-process against tmp files, plus a few real `python -m
controller` subprocesses to prove no input reaches the user as a traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller import cli
from controller.manifests import MAX_BYTES

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "invalid"
EXPECTED: dict[str, dict[str, object]] = json.loads((CORPUS / "expected.json").read_text())
EXAMPLES = sorted((ROOT / "desired").glob("*.yaml"))

VALID = """\
apiVersion: rktctl.io/v1
kind: Task
metadata:
  name: {name}
spec:
  config:
    image: docker://nginx:1.13
"""
INVALID_MEMORY = VALID + '  resources:\n    memory: "256"\n'


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["validate", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_examples_directory_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(ROOT / "desired"))
    assert code == 0, out
    lines = out.splitlines()
    assert len(lines) == len(EXAMPLES)
    for line, path in zip(lines, EXAMPLES, strict=True):
        assert line.startswith(f"ok  {path} (task {path.stem}, spec sha256:")
    assert f"{len(EXAMPLES)} manifest(s): {len(EXAMPLES)} valid, 0 invalid" in err


def test_an_invalid_file_exits_1_with_file_line_path_and_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write(tmp_path / "web.yaml", INVALID_MEMORY.format(name="web"))
    code, out, _err = run(capsys, str(bad))
    assert code == 1
    assert out == f'{bad}:9: spec.resources.memory: "256" has no unit; write "256Mi"\n'


@pytest.mark.parametrize("name", sorted(EXPECTED), ids=lambda n: n.removesuffix(".yaml"))
def test_every_corpus_file_exits_1_naming_the_file_and_the_path(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = CORPUS / name
    code, out, err = run(capsys, str(path))
    assert code == 1
    want = EXPECTED[name]
    where = f"{path}:{want['line']}" if want["line"] is not None else str(path)
    head = f"{where}: {want['path']}: " if want["path"] else f"{where}: "
    assert any(line.startswith(head) for line in out.splitlines()), out
    assert "Traceback" not in out + err


def test_a_huge_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huge = write(tmp_path / "huge.yaml", b"# " + b"x" * (3 * MAX_BYTES))
    code, out, _err = run(capsys, str(huge))
    assert code == 1
    assert out.startswith(f"{huge}: file is {MAX_BYTES + 1} bytes or more, over the 1024 KiB")


def test_json_output_has_one_object_per_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write(tmp_path / "a.yaml", VALID.format(name="api"))
    bad = write(tmp_path / "b.yaml", INVALID_MEMORY.format(name="web"))
    junk = write(tmp_path / "c.yaml", b"\xff\xfe")
    code, out, _err = run(capsys, "--json", str(tmp_path))
    assert code == 1
    docs = json.loads(out)
    assert docs[0]["path"] == str(good)
    assert docs[0]["valid"] is True
    assert docs[0]["task"] == "api"
    assert docs[0]["spec_hash"].startswith("sha256:")
    assert docs[0]["errors"] == []
    assert docs[1:] == [
        {
            "path": str(bad),
            "valid": False,
            "task": "web",
            "spec_hash": None,
            "errors": [
                {
                    "line": 9,
                    "path": "spec.resources.memory",
                    "message": '"256" has no unit; write "256Mi"',
                }
            ],
        },
        {
            "path": str(junk),
            "valid": False,
            "task": None,
            "spec_hash": None,
            "errors": [
                {
                    "line": 1,
                    "path": "",
                    "message": "not UTF-8 text (byte 0xff at offset 0); "
                    "a manifest must be a UTF-8 YAML file",
                }
            ],
        },
    ]


def test_two_files_declaring_one_name_are_both_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(tmp_path / "a.yaml", VALID.format(name="web"))
    b = write(tmp_path / "sub" / "b.yml", INVALID_MEMORY.format(name="web"))
    write(tmp_path / "c.yaml", VALID.format(name="other"))
    code, out, _err = run(capsys, str(tmp_path))
    assert code == 1
    assert f'{a}: metadata.name: task "web" is also declared in {b}; task names must' in out
    assert f'{b}: metadata.name: task "web" is also declared in {a}; task names must' in out
    assert f"ok  {tmp_path / 'c.yaml'} (task other," in out
    assert f"ok  {a}" not in out
    code, out, _err = run(capsys, "--json", str(tmp_path))
    by_path = {d["path"]: d for d in json.loads(out)}
    assert by_path[str(a)]["valid"] is False
    assert by_path[str(a)]["errors"][-1]["path"] == "metadata.name"


def test_a_file_named_twice_is_checked_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(tmp_path / "a.yaml", VALID.format(name="web"))
    code, out, _err = run(capsys, str(tmp_path), str(a))
    assert code == 0
    assert out.count("ok  ") == 1


def test_directories_skip_temp_and_hidden_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path / "web.yaml", VALID.format(name="web"))
    for junk in ("web.yaml~", ".web.yaml.swp", ".hidden.yaml", "notes.txt", "4913",
                 ".git/config.yaml", "web.yaml.dpkg-new"):  # fmt: skip
        write(tmp_path / junk, "not: [valid\n")
    code, out, _err = run(capsys, str(tmp_path))
    assert code == 0
    assert out == f"ok  {tmp_path / 'web.yaml'} (task web, spec {spec_hash_of(out)})\n"


def spec_hash_of(line: str) -> str:
    return line.rsplit("spec ", 1)[1].rstrip(")\n")


def test_an_explicit_file_is_checked_whatever_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = write(tmp_path / "web.txt", VALID.format(name="web"))
    code, out, _err = run(capsys, str(odd))
    assert code == 0
    assert out.startswith(f"ok  {odd} (task web,")


def test_a_missing_path_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, str(tmp_path / "nope"))
    assert code == 2
    assert out == ""
    assert err == f"rktctl validate: {tmp_path / 'nope'}: no such file or directory\n"


def test_an_empty_directory_is_valid_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, str(tmp_path))
    assert (code, out) == (0, "")
    assert "no manifests found" in err


def test_without_a_path_the_configured_desired_dir_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("RKTCTL_")]:
        monkeypatch.delenv(key)
    desired = tmp_path / "desired"
    write(desired / "web.yaml", INVALID_MEMORY.format(name="web"))
    config = write(tmp_path / "config.toml", f'desired_dir = "{desired}"\n')
    code, out, _err = run(capsys, "--config", str(config))
    assert code == 1
    assert out.startswith(f"{desired / 'web.yaml'}:9: spec.resources.memory:")
    monkeypatch.setenv("RKTCTL_DESIRED_DIR", str(ROOT / "desired"))
    code, out, _err = run(capsys, "--config", str(tmp_path / "empty.toml"))
    assert code == 78  # an explicit config file that does not exist
    write(tmp_path / "empty.toml", "")
    code, out, _err = run(capsys, "--config", str(tmp_path / "empty.toml"))
    assert code == 0
    assert out.count("ok  ") == len(EXAMPLES)


def test_the_default_desired_dir_missing_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RKTCTL_DESIRED_DIR", str(tmp_path / "absent"))
    config = write(tmp_path / "config.toml", "")
    code, _out, err = run(capsys, "--config", str(config))
    assert code == 2
    assert "absent: no such file or directory" in err


def test_a_dangling_symlink_in_a_directory_is_an_unreadable_manifest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # (The same "cannot read" path as a file with mode 000, but testable as root too.)
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "nowhere.yaml")
    code, out, _err = run(capsys, str(tmp_path))
    assert code == 1
    assert out.startswith(f"{tmp_path / 'gone.yaml'}: cannot read: ")


def test_python_m_controller_validate_never_prints_a_traceback(tmp_path: Path) -> None:
    """The real entry point, over the whole corpus and a directory with duplicates."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RKTCTL_")}
    corpus = subprocess.run(
        [sys.executable, "-m", "controller", "validate", str(CORPUS)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert corpus.returncode == 1
    assert "Traceback" not in corpus.stdout + corpus.stderr
    for name in EXPECTED:
        assert str(CORPUS / name) in corpus.stdout, name
    examples = subprocess.run(
        [sys.executable, "-m", "controller", "validate", "desired", "--json"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert examples.returncode == 0, examples.stdout + examples.stderr
    assert [d["valid"] for d in json.loads(examples.stdout)] == [True] * len(EXAMPLES)


def test_a_fifo_named_like_a_manifest_is_refused_without_blocking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "web.yaml"
    os.mkfifo(fifo)
    code, out, _err = run(capsys, str(tmp_path))
    assert code == 1
    assert out.startswith(f"{fifo}: cannot read: ")
    assert "not a regular file" in out


def test_a_mebibyte_of_open_brackets_gets_file_line_and_fix_exit_1_no_traceback(
    tmp_path: Path,
) -> None:
    """Whichever layer refuses it (rktctl's depth cap, or a newer libyaml's scanner)."""
    bomb = write(tmp_path / "brackets.yaml", "a: " + "[" * (MAX_BYTES - 10))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RKTCTL_")}
    result = subprocess.run(
        [sys.executable, "-m", "controller", "validate", str(bomb)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    (line,) = [ln for ln in result.stdout.splitlines() if ln.strip()]
    assert line.startswith(f"{bomb}:1: "), line
    assert line.endswith(("; fix the syntax", "a manifest needs about 5")), line
