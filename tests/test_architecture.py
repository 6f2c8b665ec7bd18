"""The import rules of docs/architecture.md, checked by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# No I/O, clock, randomness or threads in the protocol core (DESIGN: sans-I/O).
FORBIDDEN_IN_PURE = {
    "asyncio",
    "socket",
    "ssl",
    "threading",
    "sqlite3",
    "time",
    "random",
    "secrets",
    "selectors",
    "subprocess",
    "os",
}
PURE_PACKAGES = ["pbx/sip", "pbx/media", "pbx/routing", "pbx/calls", "pbx/apps"]
PURE_FILES = [
    "pbx/registrar/registrar.py",
    "pbx/registrar/location.py",
    "pbx/registrar/qualify.py",
    "pbx/transport/response_routing.py",
    "pbx/transport/flow.py",
]
# The asyncio edges live beside their pure parts: the media server's (DESIGN: "endpoint +
# ports") and the call core's (its edge, the store's one writer, the store read per call).
EDGE_FILES = {
    "pbx/media/endpoint.py",
    "pbx/media/ports.py",
    "pbx/calls/service.py",
    "pbx/calls/store_writer.py",
    "pbx/calls/directory.py",
}


def modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def top(name: str) -> str:
    return name.split(".")[0]


def pure_modules() -> list[Path]:
    paths = [
        p
        for folder in PURE_PACKAGES
        for p in modules(folder)
        if str(p.relative_to(ROOT)) not in EDGE_FILES
    ]
    paths += [ROOT / f for f in PURE_FILES if (ROOT / f).exists()]
    return paths


@pytest.mark.parametrize("path", pure_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_modules_do_no_io(path: Path) -> None:
    bad = {name for name in imported_names(path) if top(name) in FORBIDDEN_IN_PURE}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", modules("pbx/sip"), ids=lambda p: p.name)
def test_sip_core_imports_only_itself(path: Path) -> None:
    bad = {n for n in imported_names(path) if top(n) == "pbx" and not n.startswith("pbx.sip")}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_pbx_never_imports_gateway_or_webadmin() -> None:
    for path in modules("pbx"):
        bad = {n for n in imported_names(path) if top(n) in ("gateway_fxo", "webadmin")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_nothing_imports_the_composition_root() -> None:
    for folder in ("pbx", "gateway_fxo", "webadmin"):
        for path in modules(folder):
            if path.name in ("app.py", "cli.py"):
                continue
            assert "pbx.app" not in imported_names(path), path


ALLOWED_FOR_GATEWAY = (
    "pbx.sip",
    "pbx.transport",
    "pbx.media",
    "pbx.clock",
    "pbx.config",
    "pbx.store",
    "pbx.log",
    "pbx.errors",
    "pbx.sd_notify",
)
GATEWAY_LEGS = {
    "pbx.calls.leg",
    "pbx.calls.leg_incoming",
    "pbx.calls.leg_outgoing",
    "pbx.calls.leg_states",
    "pbx.calls.outputs",
    "pbx.calls.resend",
}
"""The switch's pure legs, which the gateway's SIP side is built on; nothing else of pbx.calls
(not the core, the service, the bridges or the applications)."""
LEG_DEPENDENCIES = GATEWAY_LEGS | {"pbx.calls.session_timer"}
ALLOWED_FOR_WEBADMIN = (
    "pbx.store",
    "pbx.config",
    "pbx.control",
    "pbx.log",
    "pbx.errors",
    "pbx.sd_notify",
)


@pytest.mark.parametrize(
    ("folder", "allowed"),
    [("gateway_fxo", ALLOWED_FOR_GATEWAY), ("webadmin", ALLOWED_FOR_WEBADMIN)],
)
def test_other_processes_use_only_their_part_of_pbx(folder: str, allowed: tuple[str, ...]) -> None:
    legs = GATEWAY_LEGS if folder == "gateway_fxo" else set()
    for path in modules(folder):
        for name in imported_names(path):
            if top(name) == "pbx" and name not in legs:
                assert name.startswith(allowed), f"{path.relative_to(ROOT)} imports {name}"


@pytest.mark.parametrize("module", sorted(LEG_DEPENDENCIES))
def test_the_legs_the_gateway_uses_stay_pure_and_apart_from_the_core(module: str) -> None:
    """What the gateway imports of pbx.calls imports no more of it than the legs themselves
    (and the pure session-timer rules), and does no I/O: the gateway never drags in the call
    core, its service, the store writer or the applications."""
    path = ROOT / (module.replace(".", "/") + ".py")
    for name in imported_names(path):
        assert top(name) not in FORBIDDEN_IN_PURE, f"{module} imports {name}"
        if name.startswith("pbx.calls"):
            assert name in LEG_DEPENDENCIES, f"{module} imports {name}"
        elif top(name) == "pbx":
            assert name.startswith(("pbx.sip", "pbx.transport.flow")), f"{module} imports {name}"
