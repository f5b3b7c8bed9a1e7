"""The controller's own settings: one frozen `Config`, its sources and validation.

`parse_config(file_mapping, env, overrides)` is PURE: it merges, highest
precedence first, CLI flags > `RKTCTL_*` environment > TOML file > defaults, and
raises one `ConfigError` listing every problem. `load_config()` is the only I/O
here: it reads the TOML file and `os.environ`. Config is loaded at startup and
on SIGHUP and passed explicitly; there is no global config object.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller import extraargs
from controller.errors import ConfigError
from controller.model import DEFAULT_STAGE1_FLAVOR, RKT_INSECURE_OPTIONS, STAGE1_FLAVORS, frozen_map

DEFAULT_CONFIG_PATH = "/etc/rktctl/config.toml"
ENV_PREFIX = "RKTCTL_"
LAUNCHERS = ("detached", "systemd-run")
MODES = ("enforce", "report-only")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "json", "console")
INSECURE_WORDS = RKT_INSECURE_OPTIONS
# A log is cut to half of pod_log_max_bytes; a failed launch quotes its last 2 KiB.
MIN_POD_LOG_BYTES = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    desired_dir: str = "/etc/rktctl/desired"
    """Directory of task manifests (`*.yaml`, `*.yml`), read recursively."""
    status_dir: str = "/var/lib/rktctl/status"
    """Where status files and the Prometheus textfile are written."""
    state_dir: str = "/var/lib/rktctl/state"
    """Controller state: restart counters, port allocations, pod logs, trust cache."""
    rkt: str = "rkt"
    """The rkt binary (path or name on PATH). Env: RKTCTL_RKT."""
    rkt_dir: str | None = None
    """rkt's data dir (`rkt --dir`); None leaves rkt's default (/var/lib/rkt)."""
    rkt_local_config: str | None = None
    """rkt's `--local-config` (default /etc/rkt)."""
    rkt_system_config: str | None = None
    """rkt's `--system-config` (default /usr/lib/rkt)."""
    launcher: str = "detached"
    """How `rkt run-prepared` is started: `detached` (new session) or `systemd-run`."""
    stage1: str | None = None
    """Default stage1: an image name, an absolute path or a URL of a stage1 ACI."""
    default_stage1_flavor: str = DEFAULT_STAGE1_FLAVOR
    """Flavor of rkt's compiled-in default stage1 (used when neither the task nor `stage1`
    names one): fly, host, coreos, kvm or src. It decides whether ports can be remapped."""
    insecure_default: tuple[str, ...] = ("image",)
    """`--insecure-options` when a task sets neither insecure_options nor trust_prefix."""
    strict_modes: bool = True
    """Trust policy (sshd's StrictModes): apply a manifest only if it and every directory
    up to `desired_dir` are owned by root, rktctl's own user or `trusted_uids` and are not
    group/other-writable. `false` is for development: then anyone who can write a
    manifest runs pods as root. Symlinks leaving the tree are refused either way."""
    trusted_uids: tuple[int, ...] = ()
    """Further uids that may own manifests and their directories (e.g. a git-sync user)."""
    volumes_enabled: bool = False
    """Allow absolute host paths in `volumes` (relative ones, under the task's data
    directory, are always allowed). Off by default: a host path gives the pod that part
    of the host, read-write unless the manifest says readOnly."""
    allowed_volume_prefixes: tuple[str, ...] = ()
    """With volumes_enabled: absolute host paths must be one of these directories or
    below one. Empty: any host path."""
    allowed_insecure_options: tuple[str, ...] = ("image",)
    """`insecure_options` words a manifest may use (`none` always). capabilities, paths,
    seccomp, all-run and all make the pod no container at all."""
    allow_root_user: bool = False
    """Let a manifest set `user: "0"` / `user: root`. (Without `user`, the app runs as the
    image's user.)"""
    allowed_stage1: tuple[str, ...] = ()
    """`stage1` values a manifest may name (the stage1 runs as root on the host). Empty:
    a manifest may not choose its stage1; the config's `stage1` applies."""
    allowed_extra_args: tuple[str, ...] = ()
    """Privileged `extra_args` flags a manifest may pass: caps-retain, seccomp, ipc,
    oom-score-adj (each weakens the container). Empty: none; other flags need nothing."""
    mode: str = "enforce"
    """`enforce`, or `report-only`: plan and write status and metrics for every task but
    run no rkt command that changes a pod (Argo CD without auto-sync)."""
    resync_interval_s: float = 30.0
    """Full reconcile pass at least this often, whatever the watcher saw."""
    debounce_s: float = 0.1
    """A file event after this much quiet starts a pass at once; later ones wait for it."""
    debounce_max_s: float = 1.0
    """A stream of events delays a pass by at most this long."""
    command_timeout_s: float = 60.0
    """Timeout of each rkt command other than prepare."""
    prepare_timeout_s: float = 600.0
    """Timeout of `rkt prepare` (the image is fetched before it; rkt gc uses it too)."""
    fetch_timeout_s: float = 600.0
    """Timeout of `rkt fetch`, the fetch phase before prepare (a slow pull)."""
    backoff_base_s: float = 1.0
    """First retry delay after a failed pass or action; doubles per failure."""
    backoff_cap_s: float = 300.0
    """Largest retry delay."""
    start_settle_s: float = 3.0
    """`rktctl reconcile --once` watches the pods it started this long; one that exits
    within it fails the pass (0 disables). The host stage1 needs about a second before an
    app even runs (FINDINGS), so an app that dies at once is seen well within 3 s. The
    daemon needs no window: its next pass sees the exit."""
    max_delete_fraction: float = 0.5
    """Deletion guard: hold if one pass would stop more than this share of owned pods."""
    allow_empty: bool = False
    """Let an empty or missing desired dir stop every owned pod."""
    max_parallel: int = 4
    """Tasks acted on at once (worker threads beside the loop; a pass never waits for them)."""
    host_gc: bool = False
    """Run `rkt gc` every `gc_interval_s`. Host-wide: it collects EVERY exited pod on the
    host, including pods rktctl does not own. Off, rktctl removes only its own pods
    (`rkt rm UUID`) and never runs `rkt gc`."""
    gc_interval_s: float = 600.0
    """How often `rkt gc` runs when `host_gc` is on."""
    gc_grace_period_s: float = 1800.0
    """`rkt gc --grace-period` in seconds (with `host_gc`)."""
    exited_pods_keep: int = 2
    """Exited pods kept per task (with their logs) for a post-mortem, newest first; older
    ones and those of undeclared tasks are removed. 0: a pod is removed once it exits."""
    pod_logs_keep: int = 3
    """Logs of removed pods kept per task, newest first (0: a log goes with its pod)."""
    pod_log_max_bytes: int = 1048576
    """A pod log larger than this is cut to its newest half (whole lines)."""
    log_level: str = "info"
    log_format: str = "auto"
    """`json`, `console`, or `auto` (JSON unless stderr is a TTY)."""
    meta: Mapping[str, str] = field(default_factory=frozen_map)
    """Operator-defined node attributes, visible as `meta.<key>`."""
    port_range: tuple[int, int] = (20000, 32000)
    """Dynamic host ports are allocated from this inclusive range."""
    allow_env_interpolation: bool = False
    """Allow `${env.X}` in manifests to read the controller's environment."""
    overcommit: bool = False
    """Start tasks even when their cpu/memory requests exceed node capacity."""
    reserved_cpu_millis: int = 0
    reserved_memory_bytes: int = 0

    def rkt_global_args(self) -> tuple[str, ...]:
        """Global flags every rkt invocation gets (before the subcommand)."""
        args: list[str] = []
        if self.rkt_dir:
            args.append(f"--dir={self.rkt_dir}")
        if self.rkt_local_config:
            args.append(f"--local-config={self.rkt_local_config}")
        if self.rkt_system_config:
            args.append(f"--system-config={self.rkt_system_config}")
        return tuple(args)


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def parse_config(
    file_mapping: Mapping[str, Any],
    env: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
    *,
    source: str = "config",
) -> Config:
    """Given the TOML mapping, the environment and CLI overrides, return a Config.

    Raise ConfigError listing every unknown key and bad value at once.
    """
    problems: list[str] = []
    merged: dict[str, Any] = {}
    for key, value in file_mapping.items():
        if key not in _FIELDS:
            problems.append(f"unknown setting {key!r}{_suggest(key)}")
            continue
        merged[key] = value
    for env_key, text in env.items():
        if not env_key.startswith(ENV_PREFIX) or env_key == ENV_PREFIX + "CONFIG":
            continue
        key = env_key[len(ENV_PREFIX) :].lower()
        if key in _FIELDS:
            merged[key] = _from_env_text(key, text)
    for key, value in (overrides or {}).items():
        if value is not None:
            merged[key] = value

    values: dict[str, Any] = {}
    for key, raw in merged.items():
        try:
            values[key] = _coerce(key, raw)
        except ValueError as exc:
            problems.append(f"{key}: {exc}")
    # Settings that failed above keep their defaults here, so the checks below report
    # only their own problems: the operator sees every mistake in one go.
    cfg = Config(**values)
    problems.extend(_check(cfg))
    if problems:
        raise ConfigError(problems, source=source)
    return cfg


def load_config(
    path: str | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    reload: bool = False,
) -> Config:
    """Read the TOML file (explicit path, $RKTCTL_CONFIG or the default) and the env.

    A missing default file is fine (defaults apply); a missing explicit file is an
    error. With `reload` (SIGHUP) a missing file or one without a single setting is an
    error too: it is a truncated or half-written file far more often than a wish to reset
    every setting (rkt from PATH, /var/lib/rkt). Raise ConfigError for unreadable or
    invalid config.
    """
    env = dict(os.environ if environ is None else environ)
    explicit = _explicit_path(path, env)
    config_path = Path(explicit or DEFAULT_CONFIG_PATH)
    mapping: dict[str, Any] = {}
    try:
        mapping = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        if explicit or reload:
            raise ConfigError([f"config file not found: {config_path}"]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read {config_path}: {exc}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{config_path}: invalid TOML: {exc}"]) from exc
    if reload and not mapping and config_path.exists():
        raise ConfigError(
            [
                f"{config_path} holds no setting (empty or truncated?): a reload would reset "
                "every setting to its default; the previous config stays in force. Restore "
                "the file, or restart rktctl to run with the defaults"
            ],
            source=str(config_path),
        )
    return parse_config(mapping, env, overrides, source=str(config_path))


def config_source(
    path: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str | None:
    """Return the absolute path of the file load_config(path) reads, or None if it reads none.

    That is `path`, else $RKTCTL_CONFIG, else the default file when it exists. Absolute,
    because the status documents that name it are read from other working directories.
    """
    env = os.environ if environ is None else environ
    explicit = _explicit_path(path, env)
    if explicit:
        return str(Path(explicit).absolute())  # not resolve(): keep symlinks as named
    return DEFAULT_CONFIG_PATH if Path(DEFAULT_CONFIG_PATH).is_file() else None


def _explicit_path(path: str | None, env: Mapping[str, str]) -> str | None:
    """The config file named by the caller (a flag) or by $RKTCTL_CONFIG, if any."""
    return path or env.get(ENV_PREFIX + "CONFIG") or None


def _from_env_text(key: str, text: str) -> Any:
    """Environment values are strings; lists are comma-separated, maps `k=v,k=v`."""
    annotation = str(_FIELDS[key].type)
    if annotation.startswith("tuple"):
        return [part.strip() for part in text.split(",") if part.strip()]
    if annotation.startswith("Mapping"):
        pairs = [p.split("=", 1) for p in text.split(",") if "=" in p]
        return {k.strip(): v.strip() for k, v in pairs}
    return text


def _coerce(key: str, raw: Any) -> Any:
    annotation = str(_FIELDS[key].type)
    if annotation == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in {
            "1",
            "true",
            "yes",
            "on",
            "0",
            "false",
            "no",
            "off",
        }:
            return raw.lower() in {"1", "true", "yes", "on"}
        raise ValueError(f"expected true or false, got {raw!r}")
    if annotation == "float":
        if isinstance(raw, bool):
            raise ValueError(f"expected a number, got {raw!r}")
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number of seconds, got {raw!r}") from None
    if annotation == "int":
        if isinstance(raw, bool):
            raise ValueError(f"expected an integer, got {raw!r}")
        try:
            return int(raw)
        except (TypeError, ValueError):
            raise ValueError(f"expected an integer, got {raw!r}") from None
    if annotation == "tuple[int, ...]":
        if isinstance(raw, (int, str)) and not isinstance(raw, bool):
            raw = [raw]
        if not isinstance(raw, (list, tuple)) or any(isinstance(x, bool) for x in raw):
            raise ValueError(f"expected a list of integers, got {raw!r}")
        try:
            values = tuple(int(x) for x in raw)
        except (TypeError, ValueError):
            raise ValueError(f"expected a list of integers, got {raw!r}") from None
        if any(v < 0 for v in values):
            raise ValueError(f"uids are not negative, got {raw!r}")
        return values
    if annotation.startswith("tuple[int"):
        if not isinstance(raw, (list, tuple)) or len(raw) != 2:
            raise ValueError(f"expected [low, high], got {raw!r}")
        try:
            return (int(raw[0]), int(raw[1]))
        except (TypeError, ValueError):
            raise ValueError(f"expected two integers, got {raw!r}") from None
    if annotation.startswith("tuple"):
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, (list, tuple)) or not all(isinstance(x, str) for x in raw):
            raise ValueError(f"expected a list of strings, got {raw!r}")
        return tuple(raw)
    if annotation.startswith("Mapping"):
        if not isinstance(raw, Mapping):
            raise ValueError(f"expected a table of strings, got {raw!r}")
        return frozen_map({str(k): str(v) for k, v in raw.items()})
    # str and str | None
    if raw is None and "None" in annotation:
        return None
    if not isinstance(raw, str):
        raise ValueError(f"expected a string, got {raw!r}")
    return raw


def _check(cfg: Config) -> list[str]:
    problems: list[str] = []
    if cfg.launcher not in LAUNCHERS:
        problems.append(f"launcher: {cfg.launcher!r} is not one of {', '.join(LAUNCHERS)}")
    if cfg.mode not in MODES:
        problems.append(f"mode: {cfg.mode!r} is not one of {', '.join(MODES)}")
    if cfg.log_level not in LOG_LEVELS:
        problems.append(f"log_level: {cfg.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    if cfg.default_stage1_flavor not in STAGE1_FLAVORS:
        problems.append(
            f"default_stage1_flavor: {cfg.default_stage1_flavor!r} is not one of "
            f"{', '.join(STAGE1_FLAVORS)}"
        )
    if cfg.log_format not in LOG_FORMATS:
        problems.append(f"log_format: {cfg.log_format!r} is not one of {', '.join(LOG_FORMATS)}")
    for key in ("insecure_default", "allowed_insecure_options"):
        bad_words = [w for w in getattr(cfg, key) if w not in INSECURE_WORDS]
        if bad_words:
            problems.append(
                f"{key}: unknown option(s) {', '.join(bad_words)}; "
                f"rkt accepts {', '.join(INSECURE_WORDS)}"
            )
    unknown_flags = [f for f in cfg.allowed_extra_args if f not in extraargs.PRIVILEGED]
    if unknown_flags:
        problems.append(
            f"allowed_extra_args: {', '.join(unknown_flags)} not gated; list flag names "
            f"without dashes, from {', '.join(sorted(extraargs.PRIVILEGED))}"
        )
    for prefix in cfg.allowed_volume_prefixes:
        if not prefix.startswith("/") or ".." in prefix.split("/"):
            problems.append(
                f"allowed_volume_prefixes: {prefix!r} is not an absolute directory path "
                "without '..'"
            )
    for name in (
        "resync_interval_s",
        "command_timeout_s",
        "prepare_timeout_s",
        "fetch_timeout_s",
        "backoff_base_s",
        "backoff_cap_s",
    ):
        if getattr(cfg, name) <= 0:
            problems.append(f"{name}: must be greater than 0")
    for name in (
        "debounce_s",
        "debounce_max_s",
        "gc_interval_s",
        "gc_grace_period_s",
        "start_settle_s",
    ):
        if getattr(cfg, name) < 0:
            problems.append(f"{name}: must not be negative")
    if not 0 < cfg.max_delete_fraction <= 1:
        problems.append("max_delete_fraction: must be in (0, 1]")
    if cfg.max_parallel < 1:
        problems.append("max_parallel: must be at least 1")
    if cfg.host_gc and cfg.gc_interval_s <= 0:
        problems.append(
            "gc_interval_s: must be greater than 0 when host_gc is on "
            "(or set host_gc = false to never run rkt gc)"
        )
    if cfg.exited_pods_keep < 0:
        problems.append("exited_pods_keep: must not be negative")
    if cfg.pod_logs_keep < 0:
        problems.append("pod_logs_keep: must not be negative")
    if cfg.pod_log_max_bytes < MIN_POD_LOG_BYTES:
        problems.append(
            f"pod_log_max_bytes: must be at least {MIN_POD_LOG_BYTES}, so that a cut log "
            "still holds the pod's last lines"
        )
    low, high = cfg.port_range
    if not 1 <= low <= high <= 65535:
        problems.append(f"port_range: [{low}, {high}] is not a range within 1..65535")
    if not cfg.rkt:
        problems.append("rkt: must name the rkt binary")
    return problems


def _suggest(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, list(_FIELDS), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
