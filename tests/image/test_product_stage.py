"""The image recipe's product stage, run for real in a Debian bookworm chroot.

image/build.sh builds a minbase bookworm root file system for this machine's architecture (amd64
in CI) once into a cache folder (SWITCHBOARD_IMAGE_CACHE, default
/var/cache/switchboard-image-test), then every run starts from a fresh copy of it and runs
image/product.sh inside it with chroot: exactly what the arm64 image gets. The assemble stage then
lays that root out as an image file. Needs root and debootstrap (CI has both); elsewhere skipped.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "image" / "build.sh"
CACHE = Path(os.environ.get("SWITCHBOARD_IMAGE_CACHE", "/var/cache/switchboard-image-test"))

pytestmark = pytest.mark.timeout(900)


def _require_root() -> None:
    if os.geteuid() == 0:
        return
    message = "the image recipe needs root (debootstrap, chroot, mounts)"
    if os.environ.get("SWITCHBOARD_REQUIRE_TOOLS") == "1":
        pytest.fail(message + " and SWITCHBOARD_REQUIRE_TOOLS=1", pytrace=False)
    pytest.skip(message)


def _arch() -> str:
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if arch not in ("amd64", "arm64"):
        pytest.skip(f"the image recipe builds amd64 or arm64, not {arch}")
    return arch


def build(workdir: Path, arch: str, *stages: str, out: Path | None = None) -> str:
    """Run image/build.sh; its whole log goes to a file beside the cache, its tail to the assert."""
    args = [str(BUILD), "--arch", arch, "--workdir", str(workdir)]
    if out is not None:
        args += ["--out", str(out)]
    log = workdir.parent / f"{workdir.name}-{'-'.join(stages)}.log"
    env = {**os.environ, "PYTHON": sys.executable}
    with log.open("w") as sink:
        result = subprocess.run(
            [*args, *stages], stdout=sink, stderr=subprocess.STDOUT, env=env, timeout=840
        )
    text = log.read_text(errors="replace")
    failed = f"build.sh {' '.join(stages)} failed (log {log}):\n"
    assert result.returncode == 0, failed + text[-6000:]
    return text


def in_chroot(root: Path, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [
            "chroot",
            str(root),
            "/usr/bin/env",
            "-i",
            "PATH=/usr/local/bin:/usr/bin:/usr/sbin",
            "LANG=C.UTF-8",
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result


def mounts_under(path: Path) -> list[str]:
    targets = subprocess.run(
        ["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True, check=True
    ).stdout.split()
    return [t for t in targets if t.startswith(str(path) + "/")]


class Image:
    def __init__(self, workdir: Path, arch: str, log: str) -> None:
        self.workdir = workdir
        self.arch = arch
        self.root = workdir / "rootfs"
        self.log = log

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    _require_root()
    require_tool("debootstrap", "debootstrap")
    require_tool("chroot", "coreutils")
    arch = _arch()
    workdir = CACHE / arch
    workdir.mkdir(parents=True, exist_ok=True)
    # One build at a time per cache (two test runs at once would share the rootfs).
    with (CACHE / f".{arch}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        log = build(workdir, arch, "rootfs", "product")
        yield Image(workdir, arch, log)


def _passwd(root: Path, name: str) -> list[str]:
    for line in (root / "etc/passwd").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":")
    raise AssertionError(f"no user {name} in the image")


def _group_members(root: Path, group: str) -> list[str]:
    for line in (root / "etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == group:
            return [m for m in fields[3].split(",") if m]
    raise AssertionError(f"no group {group} in the image")


def test_build_left_nothing_mounted_and_nothing_behind(image: Image) -> None:
    assert mounts_under(image.workdir) == []
    assert not image.path("/tmp/switchboard-stage").exists()
    assert not image.path("/usr/sbin/policy-rc.d").exists()


def test_the_system_user_and_its_data_folder(image: Image) -> None:
    user = _passwd(image.root, "switchboard")
    uid, home, shell = int(user[2]), user[5], user[6]
    assert uid < 1000, "a system user"
    assert home == "/var/lib/switchboard"
    assert shell.endswith("nologin")
    data = image.path("/var/lib/switchboard").stat()
    assert (data.st_uid, oct(data.st_mode & 0o777)) == (uid, "0o750")
    for group in ("dialout", "audio", "gpio"):
        assert "switchboard" in _group_members(image.root, group), group


def test_pbx_runs_from_the_venv_inside_the_chroot(image: Image) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for pbx in ("/opt/switchboard/venv/bin/pbx", "/usr/local/bin/pbx"):
        assert in_chroot(image.root, pbx, "--version").stdout.strip() == f"pbx, version {version}"
    # The three programs, and the line cards' libraries from Debian, import in the image's Python.
    in_chroot(
        image.root,
        "/opt/switchboard/venv/bin/python",
        "-c",
        "import pbx.app, gateway_fxo.app, webadmin, numpy, uvloop, serial, pyaudio",
    )


def test_the_switch_reads_its_settings_file(image: Image) -> None:
    """pbx.service passes --config /etc/switchboard/switchboard.toml: it must load, on the LAN."""
    unit = ROOT / "systemd/pbx.service"
    units = unit.read_text() if unit.exists() else ""
    for config in re.findall(r"--config\s+(\S+)", units) or ["/etc/switchboard/switchboard.toml"]:
        code = (
            "from pathlib import Path; from pbx.config import load_settings; "
            f"print(load_settings(config_file=Path({config!r})).bind)"
        )
        out = in_chroot(image.root, "/opt/switchboard/venv/bin/python", "-c", code).stdout
        assert out.strip() == "0.0.0.0"


def test_every_python_package_in_the_venv_is_pinned(image: Image) -> None:
    pins = {}
    for line in (ROOT / "image/constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    frozen = in_chroot(image.root, "/opt/switchboard/venv/bin/pip", "freeze", "--local").stdout
    unpinned = []
    for line in frozen.splitlines():
        if line.startswith("switchboard"):
            continue
        name, version = line.split("==")
        if pins.get(name.lower().replace("_", "-")) != version:
            unpinned.append(line)
    assert unpinned == [], f"add these to image/constraints.txt: {unpinned}"


def _enabled_links(root: Path, unit: str) -> list[Path]:
    # Not Path.glob: it follows the links, whose absolute targets are inside the image.
    etc = root / "etc/systemd/system"
    links = (d / unit for d in etc.iterdir() if d.suffix in (".wants", ".requires"))
    return [link for link in links if link.is_symlink()]


def test_units_are_installed_and_enabled(image: Image) -> None:
    units = sorted(
        p for pattern in ("*.service", "*.target") for p in (ROOT / "systemd").glob(pattern)
    )
    for unit in units:
        installed = image.path(f"/usr/lib/systemd/system/{unit.name}")
        assert installed.read_bytes() == unit.read_bytes(), unit.name
    if (ROOT / "systemd/switchboard.target").exists():
        assert _enabled_links(image.root, "switchboard.target"), "switchboard.target not enabled"
    # First boot makes the secrets; the box is reachable by name and gets an address.
    for unit in (
        "switchboard-firstboot.service",
        "avahi-daemon.service",
        "systemd-networkd.service",
        "systemd-resolved.service",
        "systemd-timesyncd.service",
    ):
        links = _enabled_links(image.root, unit)
        assert links, f"{unit} not enabled"
        assert all(os.readlink(link).endswith(f"/{unit}") for link in links)
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        assert os.readlink(image.path(f"/etc/systemd/system/{timer}")) == "/dev/null"


def test_journal_in_ram_and_bounded(image: Image) -> None:
    settings: dict[str, str] = {}
    for conf in sorted(image.path("/etc/systemd/journald.conf.d").glob("*.conf")):
        for line in conf.read_text().splitlines():
            if "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                settings[key.strip()] = value.strip()
    assert settings["Storage"] == "volatile"
    assert settings["RuntimeMaxUse"] == "32M"


def test_hostname_and_mdns(image: Image) -> None:
    assert image.path("/etc/hostname").read_text().strip() == "switchboard"
    assert re.search(r"^127\.0\.1\.1\s+switchboard$", image.path("/etc/hosts").read_text(), re.M)
    assert image.path("/usr/sbin/avahi-daemon").exists()
    hosts = next(
        line
        for line in image.path("/etc/nsswitch.conf").read_text().splitlines()
        if line.startswith("hosts:")
    )
    assert "mdns4_minimal" in hosts
    resolved = image.path("/etc/systemd/resolved.conf.d/10-switchboard.conf").read_text()
    assert "MulticastDNS=no" in resolved, "avahi, not resolved, answers switchboard.local"


def test_writes_kept_off_the_sd_card(image: Image) -> None:
    mounts = {}
    for line in image.path("/etc/fstab").read_text().splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            mounts[fields[1]] = fields
    assert "noatime" in mounts["/"][3].split(",")
    for tmpfs in ("/tmp", "/var/log"):
        assert mounts[tmpfs][2] == "tmpfs", tmpfs


def test_nothing_machine_specific_in_the_image(image: Image) -> None:
    assert image.path("/etc/machine-id").read_text() == ""
    assert os.readlink(image.path("/etc/resolv.conf")) == "../run/systemd/resolve/stub-resolv.conf"
    assert not image.path("/var/lib/switchboard/tls").exists()
    assert not list(image.path("/var/lib/apt/lists").glob("*_Packages"))


def test_first_boot_makes_the_secrets_once(image: Image) -> None:
    data = image.path("/var/lib/switchboard")
    key = data / "tls/key.pem"
    try:
        first = in_chroot(image.root, "/usr/local/sbin/switchboard-firstboot")
        assert "new TLS key" in first.stderr
        machine_id = image.path("/etc/machine-id").read_text().strip()
        assert re.fullmatch(r"[0-9a-f]{32}", machine_id)
        digest = hashlib.sha256(key.read_bytes()).hexdigest()
        uid = int(_passwd(image.root, "switchboard")[2])
        gid = int(_passwd(image.root, "switchboard")[3])
        assert (key.stat().st_uid, key.stat().st_gid, oct(key.stat().st_mode & 0o777)) == (
            0,
            gid,
            "0o640",
        )
        assert data.stat().st_uid == uid
        san = in_chroot(
            image.root,
            "openssl",
            "x509",
            "-noout",
            "-ext",
            "subjectAltName",
            "-in",
            "/var/lib/switchboard/tls/cert.pem",
        ).stdout
        assert "DNS:switchboard.local" in san
        # Key and certificate belong together.
        public = [
            in_chroot(image.root, "openssl", *args).stdout
            for args in (
                ("pkey", "-pubout", "-in", "/var/lib/switchboard/tls/key.pem"),
                ("x509", "-noout", "-pubkey", "-in", "/var/lib/switchboard/tls/cert.pem"),
            )
        ]
        assert public[0] == public[1]

        second = in_chroot(image.root, "/usr/local/sbin/switchboard-firstboot")
        assert "already done" in second.stderr
        assert hashlib.sha256(key.read_bytes()).hexdigest() == digest
        assert image.path("/etc/machine-id").read_text().strip() == machine_id

        # Even without its marker (a crash just before it was written), an existing key stays.
        (data / ".firstboot-done").unlink()
        third = in_chroot(image.root, "/usr/local/sbin/switchboard-firstboot")
        assert "new TLS key" not in third.stderr
        assert hashlib.sha256(key.read_bytes()).hexdigest() == digest
    finally:
        shutil.rmtree(data / "tls", ignore_errors=True)
        for name in (".firstboot-done", ".firstboot.lock"):
            (data / name).unlink(missing_ok=True)
        image.path("/etc/machine-id").write_text("")


def test_assemble_lays_out_the_image(image: Image) -> None:
    """The assemble stage on this root: MBR, FAT boot + ext4 root, with no loop device."""
    for tool, package in (
        ("sfdisk", "fdisk"),
        ("mkfs.vfat", "dosfstools"),
        ("mcopy", "mtools"),
        ("mkfs.ext4", "e2fsprogs"),
        ("debugfs", "e2fsprogs"),
    ):
        require_tool(tool, package)
    out = image.workdir / "layout-check.img"
    try:
        build(image.workdir, image.arch, "assemble", out=out)
        table = json.loads(
            subprocess.run(
                ["sfdisk", "--json", str(out)], capture_output=True, text=True, check=True
            ).stdout
        )["partitiontable"]
        assert table["label"] == "dos"
        boot, root = table["partitions"]
        assert (boot["start"], boot["type"], boot.get("bootable")) == (8192, "c", True)
        assert (root["type"], root["start"]) == ("83", boot["start"] + boot["size"])
        assert out.stat().st_size == (root["start"] + root["size"]) * 512
        part = image.workdir / "layout-check.ext4"
        subprocess.run(
            [
                "dd",
                f"if={out}",
                f"of={part}",
                "bs=4M",
                f"skip={root['start'] * 512}",
                f"count={root['size'] * 512}",
                "iflag=skip_bytes,count_bytes",
                "status=none",
            ],
            check=True,
        )
        fsck = subprocess.run(["e2fsck", "-fn", str(part)], capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        label = subprocess.run(["e2label", str(part)], capture_output=True, text=True).stdout
        assert label.strip() == "RASPIROOT"
        hostname = subprocess.run(
            ["debugfs", "-R", "cat /etc/hostname", str(part)], capture_output=True, text=True
        ).stdout
        assert hostname.strip() == "switchboard"
        # The venv's files kept their owners and modes, and the rootfs got its firmware back.
        stat = subprocess.run(
            ["debugfs", "-R", "stat /var/lib/switchboard", str(part)],
            capture_output=True,
            text=True,
        ).stdout
        uid = _passwd(image.root, "switchboard")[2]
        assert re.search(rf"User:\s+{uid}\b", stat) and "Mode:  0750" in stat, stat
        assert image.path("/boot/firmware").is_dir()
    finally:
        out.unlink(missing_ok=True)
        (image.workdir / "layout-check.ext4").unlink(missing_ok=True)
