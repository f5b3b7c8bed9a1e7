"""Rules for `spec.config`: what becomes rkt's argv (image, args, insecure options,
DNS, networks, published ports, volumes).

PURE. Each rule is a function of the Document that adds problems; RULES in
rules/__init__.py lists them.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final

from controller.manifests.problems import Path, clip, did_you_mean, quote, quote_key, show
from controller.manifests.rules.document import Document, finite, get, strings, strs

AC_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
"""rkt's ACName: the syntax of an image's port names such as `6379-tcp`."""
_INSECURE_WITHOUT_KEYSTORE: Final = frozenset({"image", "all-fetch", "all"})
_SPECIAL_NETS: Final = frozenset({"host", "none"})
_SPECIAL_DNS: Final = frozenset({"host", "none"})


def argv_words(doc: Document) -> None:
    """Values become rkt argv words: none may hold NUL or be read by rkt as a flag."""
    for path, text in strings(doc.data):
        if "\x00" in text:
            doc.add(
                path,
                "contains a NUL character (\\0), which no rkt argument, environment value "
                "or path can hold; remove it",
            )
    image = get(doc.data, "spec", "config", "image")
    if isinstance(image, str) and image.startswith("-"):
        doc.add(
            ("spec", "config", "image"),
            "must not start with '-': rkt would read it as a flag, not as an image; write "
            "an image name, a sha512- hash, an ACI URL or docker://...",
        )
    base = ("spec", "config", "args")
    for i, arg in strs(get(doc.data, *base)):
        if arg == "---":
            doc.add(
                (*base, i),
                "a lone '---' cannot be passed: rkt ends the app's arguments there and "
                "reads the words after it as another image and its flags; remove it",
            )


def insecure_and_trust(doc: Document) -> None:
    base = ("spec", "config", "insecure_options")
    options = strs(get(doc.data, *base))
    words = [w for _, w in options]
    if "none" in words and len(set(words)) > 1:
        i = next(i for i, w in options if w == "none")
        doc.add((*base, i), '"none" turns every option off; list it alone or remove it')
    trust = get(doc.data, "spec", "config", "trust_prefix")
    if isinstance(trust, str):
        for i, word in options:
            if word in _INSECURE_WITHOUT_KEYSTORE:
                doc.add(
                    (*base, i),
                    f"{quote(word)} disables rkt's keystore, so `rkt trust` for trust_prefix "
                    "would fail; remove it or remove trust_prefix",
                )


def dns(doc: Document) -> None:
    base = ("spec", "config", "dns_servers")
    servers = strs(get(doc.data, *base))
    special = [w for _, w in servers if w in _SPECIAL_DNS]
    for i, server in servers:
        if server in _SPECIAL_DNS:
            if len(servers) > 1:
                doc.add(
                    (*base, i),
                    f"{quote(server)} must be the only entry (dns_servers: [{quote(server)}])",
                )
            continue
        try:
            ipaddress.ip_address(server)
        except ValueError:
            doc.add(
                (*base, i),
                f"{quote(server)} is not an IP address; list IPv4/IPv6 addresses, "
                'or use ["host"] or ["none"] alone',
            )
    search = get(doc.data, "spec", "config", "dns_search_domains")
    if special and isinstance(search, list) and search:
        doc.add(
            ("spec", "config", "dns_search_domains"),
            f'cannot be combined with dns_servers ["{special[0]}"] (rkt refuses '
            "--dns-search with --dns=host|none); remove one of them",
        )


def net(doc: Document) -> None:
    base = ("spec", "config", "net")
    items = strs(get(doc.data, *base))
    for i, item in items:
        name, _, args = item.partition(":")
        if name in _SPECIAL_NETS:
            if args:
                doc.add(
                    (*base, i), f"network {quote(name)} takes no arguments; write {quote(name)}"
                )
            elif len(items) > 1:
                doc.add(
                    (*base, i), f"{quote(name)} must be the only network (net: [{quote(name)}])"
                )


def ports_and_port_map(doc: Document) -> None:
    ports = get(doc.data, "spec", "resources", "ports")
    port_map = get(doc.data, "spec", "config", "port_map")
    pm_path: Path = ("spec", "config", "port_map")
    special = doc.net[0] if len(doc.net) == 1 and doc.net[0] in _SPECIAL_NETS else None
    if isinstance(ports, dict):
        seen_static: dict[int, str] = {}
        for label, request in ports.items():
            static = get(request, "static")
            if isinstance(static, int) and not isinstance(static, bool):
                if static in seen_static:
                    doc.add(
                        ("spec", "resources", "ports", label, "static"),
                        f"host port {static} is already used by port {seen_static[static]!r}",
                    )
                seen_static.setdefault(static, label)
        if special == "none" and ports:
            doc.add(
                ("spec", "resources", "ports"),
                'a task with net ["none"] has no network to publish ports on; remove the ports',
            )
        elif special is None and (port_map is None or isinstance(port_map, dict)):
            for label in ports:
                if not isinstance(port_map, dict) or label not in port_map:
                    doc.add(
                        ("spec", "resources", "ports", label),
                        f"port {quote_key(label)} has no entry in spec.config.port_map; map it to "
                        "the image's port name or container port "
                        f'(e.g. {clip(label)}: "8080-tcp"), or use net: ["host"]',
                    )
    if not isinstance(port_map, dict):
        return
    if special is not None and port_map:
        doc.add(
            pm_path,
            f'rkt cannot publish ports with net ["{special}"]; remove port_map '
            "(with host networking the app binds the host ports itself)",
        )
        return
    targets: dict[str, str] = {}
    for label, target in port_map.items():
        path = (*pm_path, label)
        if label not in doc.ports:
            doc.add(
                path,
                f"{quote_key(label)} is not a port declared in spec.resources.ports; declare it "
                "there or remove it" + did_you_mean(label, doc.ports),
            )
        if isinstance(target, str):
            if target.isdigit():
                if not 1 <= int(target) <= 65535:
                    doc.add(path, f"{quote(target)} is not a port number (1-65535)")
            elif "/" in target and AC_NAME.fullmatch(target.replace("/", "-")):
                doc.add(
                    path,
                    f'{quote(target)}: rkt port names use "-"; write "{target.replace("/", "-")}"',
                )
            elif not AC_NAME.fullmatch(target):
                doc.add(
                    path,
                    f"{quote(target)} is not a port name; use the image's port name such as "
                    '"6379-tcp" or a container port number',
                )
        if isinstance(target, (str, int, float)) and not isinstance(target, bool):
            normal = port_target(target) if finite(target) else str(target)
            if normal in targets:
                doc.add(
                    path,
                    f"container port {show(target)} is already mapped by {targets[normal]!r}",
                )
            targets.setdefault(normal, label)


def volumes(doc: Document) -> None:
    base = ("spec", "config", "volumes")
    targets: dict[str, int] = {}
    for i, entry in strs(get(doc.data, *base)):
        path = (*base, i)
        parts = entry.split(":")
        if len(parts) == 1:
            doc.add(path, f'{quote(entry)} has no ":"; write "host:container" such as "data:/data"')
            continue
        if len(parts) > 3:
            doc.add(
                path,
                f'{quote(entry)} has too many ":"; write "host:container" or '
                '"host:container:readOnly" (paths cannot contain ":")',
            )
            continue
        host, container = parts[0], parts[1]
        if len(parts) == 3 and parts[2] != "readOnly":
            why = " (the spelling is case-sensitive)" if parts[2].lower() == "readonly" else ""
            doc.add(
                path,
                f'the third part {quote(parts[2])} must be exactly "readOnly"{why}; '
                "Nomad silently mounted such volumes read-write",
            )
        if not host:
            doc.add(path, f"{quote(entry)} has an empty host path")
        elif host.startswith("~"):
            doc.add(path, f'{quote(host)}: "~" is not expanded; write an absolute path')
        elif not host.startswith("/") and ".." in host.split("/"):
            doc.add(
                path,
                f"relative host path {quote(host)} must stay inside the task's data directory "
                "(no '..'); use an absolute path instead",
            )
        elif "," in host:
            doc.add(
                path,
                f"host path {quote(host)} contains ',': rkt splits --volume on commas, so "
                "the rest would be read as volume options; rename the directory",
            )
        if not container.startswith("/"):
            doc.add(path, f'container path {quote(container)} must be absolute (start with "/")')
        elif container in targets:
            first = targets[container]
            doc.add(
                path, f"container path {quote(container)} is already mounted by volumes[{first}]"
            )
        else:
            targets[container] = i


def port_target(target: str | float) -> str:
    """A port name stays as written; a number (JSON Schema lets 80.0 be one) becomes "80"."""
    return target if isinstance(target, str) else str(int(target))
