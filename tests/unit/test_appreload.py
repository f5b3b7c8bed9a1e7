"""Which pods `spec.reload` signals (controller/appreload.py, pure)."""

from __future__ import annotations

from controller.appreload import plan_reloads
from controller.model import PodState, PodUUID, Reason, ReloadOn, Signal, TaskName
from tests.factories import observation, pod, task

WEB = task("web", reload=ReloadOn(signal="USR1", paths=("/etc/web/app.conf", "/etc/web/b")))
V1 = {"/etc/web/app.conf": "aaa", "/etc/web/b": "bbb"}
V2 = {"/etc/web/app.conf": "ccc", "/etc/web/b": "bbb"}


def _plan(pods: list, read: dict, *, now: dict | None = None, acting=frozenset(), started=None):  # type: ignore[no-untyped-def]
    return plan_reloads(
        {TaskName("web"): WEB},
        observation(*pods),
        {TaskName("web"): now if now is not None else V2},
        read,
        acting=frozenset(acting),
        started_with=started or {},
    )


def test_a_pod_whose_app_read_other_contents_is_signalled_naming_the_changed_file() -> None:
    running = pod("web", spec_hash=WEB.spec_hash)
    out = _plan([running], {running.uuid: V1})
    assert out.signals == (
        Signal(task=TaskName("web"), uuid=running.uuid, reason=Reason.FILES_CHANGED,
               signal="USR1", files=tuple(sorted(V2.items())), changed=("/etc/web/app.conf",)),
    )  # fmt: skip
    assert not out.adopted


def test_nothing_changed_nothing_sent() -> None:
    running = pod("web", spec_hash=WEB.spec_hash)
    assert _plan([running], {running.uuid: V2}).signals == ()


def test_a_pod_without_a_record_is_adopted_as_having_read_the_files_at_its_start() -> None:
    running = pod("web", spec_hash=WEB.spec_hash)
    found = _plan([running], {})  # running before rktctl: it read what is there now
    assert (found.signals, found.adopted) == ((), {running.uuid: V2})
    # Started by rktctl when the files were V1; they changed before the pod was seen.
    late = _plan([running], {}, started={TaskName("web"): V1})
    assert [s.uuid for s in late.signals] == [running.uuid]
    assert late.adopted == {running.uuid: V1}


def test_pods_that_are_not_the_running_current_spec_are_left_alone() -> None:
    old = pod("web", spec_hash="sha256:0000000000000000")
    exited = pod("web", PodState.EXITED, spec_hash=WEB.spec_hash)
    prepared = pod("web", PodState.PREPARED, spec_hash=WEB.spec_hash)
    foreign = pod("web", spec_hash=WEB.spec_hash, owned=False)
    stale = {p.uuid: V1 for p in (old, exited, prepared, foreign)}
    assert _plan([old, exited, prepared, foreign], stale).signals == ()


def test_a_task_with_other_actions_this_pass_is_not_signalled() -> None:
    running = pod("web", spec_hash=WEB.spec_hash)
    assert _plan([running], {running.uuid: V1}, acting={TaskName("web")}).signals == ()


def test_a_file_that_vanished_is_a_change_too() -> None:
    running = pod("web", spec_hash=WEB.spec_hash)
    gone = {**V1, "/etc/web/b": "missing"}
    (sent,) = _plan([running], {running.uuid: V1}, now=gone).signals
    assert sent.changed == ("/etc/web/b",)


def test_a_task_without_reload_is_never_signalled() -> None:
    plain = task("api")
    running = pod("api", spec_hash=plain.spec_hash)
    out = plan_reloads(
        {TaskName("api"): plain}, observation(running), {}, {PodUUID(running.uuid): V1},
        acting=frozenset(), started_with={},
    )  # fmt: skip
    assert out.signals == () and not out.adopted
