"""`spec.reload` in a manifest: parsed, checked against the volumes, never hashed."""

from __future__ import annotations

import pytest

from controller.manifests import ManifestInvalidError, compute_spec_hash, parse_manifest
from controller.model import ReloadOn

BASE = """\
apiVersion: rktctl.io/v1
kind: Task
metadata: {name: web}
spec:
  config:
    image: example.com/web
    volumes: ["conf:/etc/web", "/srv/shared:/shared:readOnly"]
"""


def errors(text: str) -> str:
    with pytest.raises(ManifestInvalidError) as info:
        parse_manifest(text, source="w.yaml")
    return str(info.value)


def test_the_plain_word_on_is_the_key_here_and_paths_are_normalised() -> None:
    spec = parse_manifest(
        BASE + "  reload:\n    on: [conf/./web.conf, /srv/shared/a.conf, /srv/shared]\n",
        source="w",
    )
    assert spec.reload == ReloadOn(
        signal="HUP", paths=("conf/web.conf", "/srv/shared/a.conf", "/srv/shared")
    )
    quoted = parse_manifest(BASE + '  reload: {signal: USR2, "on": [conf/web.conf]}\n', source="w")
    assert quoted.reload == ReloadOn(signal="USR2", paths=("conf/web.conf",))


def test_elsewhere_on_is_still_refused_as_the_boolean_it_reads_as() -> None:
    message = errors(BASE + "  env:\n    on: '1'\n")
    assert "key on is read as the boolean true" in message


def test_reload_is_not_part_of_the_spec_hash() -> None:
    plain = parse_manifest(BASE, source="w")
    reloading = parse_manifest(BASE + "  reload: {on: [conf/web.conf]}\n", source="w")
    assert compute_spec_hash(reloading) == compute_spec_hash(plain) == plain.spec_hash


@pytest.mark.parametrize(
    ("section", "words"),
    [
        pytest.param(
            "{on: [/etc/other.conf]}", "is in none of this task's volumes", id="unmounted"
        ),
        pytest.param("{on: [web.conf]}", "is in none of this task's volumes", id="beside-volume"),
        pytest.param("{on: [conf/../../x]}", "no '~', no '..'", id="climbs"),
        pytest.param("{on: []}", "needs at least 1 item(s), has 0", id="empty"),
        pytest.param("{on: [conf/a], signal: TERM}", "HUP", id="stopping-signal"),
        pytest.param("{signal: HUP}", "on", id="no-files"),
    ],
)
def test_bad_reload_sections_are_refused_with_the_fix(section: str, words: str) -> None:
    message = errors(BASE + f"  reload: {section}\n")
    assert "spec.reload" in message and words in message, message


def test_kvm_is_refused_because_the_host_cannot_reach_its_apps() -> None:
    text = BASE + "  stage1: coreos.com/rkt/stage1-kvm:1.30.0\n  reload: {on: [conf/a]}\n"
    assert "kvm stage1 runs apps inside a virtual machine" in errors(text)
