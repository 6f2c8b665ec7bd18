#!/usr/bin/env bash
# Boot the arm64 image in qemu-system-aarch64 (-M virt, software emulation) and check that the box
# comes up: the first-boot secrets are made, the root partition grows, the web admin answers its
# setup page and the switch answers SIP OPTIONS. Works on a copy of the image (in /tmp), grown to
# 4 GiB like an SD card; the guest's network is restricted (it reaches nothing outside), only the
# web and SIP ports are forwarded to 127.0.0.1. Not a Raspberry Pi: the Pi's firmware, device tree
# and cmdline.txt are not used (Debian's kernel and initramfs from the boot partition are).
#
# Usage: image/boot-test.sh [IMAGE] [MINUTES]   (needs qemu-system-arm, mtools, curl, python3)
set -euo pipefail

IMG=${1:-/var/cache/switchboard-image/arm64/switchboard-bookworm-arm64.img}
MINUTES=${2:-20}
WEB_PORT=${WEB_PORT:-18080}
SIP_PORT=${SIP_PORT:-15060}
[ -f "$IMG" ] || { echo "no image $IMG: make image first" >&2; exit 1; }
for tool in qemu-system-aarch64 mdir mcopy curl python3; do
    command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/switchboard-boot.XXXXXX)
QEMU_PID=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    if [ -n "$QEMU_PID" ]; then kill "$QEMU_PID" 2>/dev/null || true; wait "$QEMU_PID" 2>/dev/null || true; fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

cp --sparse=always "$IMG" "$WORK/disk.img"
truncate -s 4G "$WORK/disk.img"
# The kernel and initramfs from the boot partition (the first one, at 4 MiB).
start=$(sfdisk --json "$IMG" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][0]["start"])')
size=$(sfdisk --json "$IMG" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][0]["size"])')
dd if="$IMG" of="$WORK/boot.vfat" bs=4M skip=$((start * 512)) count=$((size * 512)) \
    iflag=skip_bytes,count_bytes status=none
export MTOOLS_SKIP_CHECK=1
kernel=$(mdir -b -i "$WORK/boot.vfat" ::/ | grep -o 'vmlinuz-[^ ]*' | sort -V | tail -n1)
initrd=$(mdir -b -i "$WORK/boot.vfat" ::/ | grep -o 'initrd.img-[^ ]*' | sort -V | tail -n1)
mcopy -i "$WORK/boot.vfat" "::/$kernel" "$WORK/vmlinuz"
mcopy -i "$WORK/boot.vfat" "::/$initrd" "$WORK/initrd"

qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -display none -monitor none \
    -serial "file:$WORK/console.log" -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd" \
    -append "root=LABEL=RASPIROOT rw console=ttyAMA0 rootwait" \
    -drive if=virtio,format=raw,file="$WORK/disk.img" \
    -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$WEB_PORT-:8080,hostfwd=udp:127.0.0.1:$SIP_PORT-:5060" \
    -device virtio-net-pci,netdev=n0,romfile= &
QEMU_PID=$!
began=$(date +%s)
deadline=$((began + MINUTES * 60))

sip_options() {
    python3 - "$SIP_PORT" <<'EOF'
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(5)
me = s.getsockname()[1]
req = (
    "OPTIONS sip:127.0.0.1 SIP/2.0\r\n"
    f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-boottest;rport\r\n"
    "Max-Forwards: 70\r\nFrom: <sip:boot-test@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\n"
    "Call-ID: boot-test@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)
s.sendto(req.encode(), ("127.0.0.1", port))
try:
    print(s.recv(65535).decode(errors="replace").split("\r\n")[0])
except OSError:
    sys.exit(1)
EOF
}

web=0 sip=0
while [ "$(date +%s)" -lt "$deadline" ]; do
    kill -0 "$QEMU_PID" 2>/dev/null || { echo "qemu stopped" >&2; break; }
    if [ "$web" = 0 ] && [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$WEB_PORT/setup")" = 200 ]; then
        web=$(($(date +%s) - began))
        echo "web admin answers its setup page after ${web}s" >&2
    fi
    if [ "$sip" = 0 ] && line=$(sip_options) && [[ $line == "SIP/2.0 200"* ]]; then
        sip=$(($(date +%s) - began))
        echo "switch answers OPTIONS ($line) after ${sip}s" >&2
    fi
    [ "$web" != 0 ] && [ "$sip" != 0 ] && break
    sleep 5
done

console=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/console.log")
failed=0
check() { # TEXT WHAT
    if grep -qF -- "$1" <<<"$console"; then echo "ok: $2" >&2; else echo "MISSING: $2" >&2; failed=1; fi
}
check "switchboard-firstboot: new TLS key" "first boot made the TLS key"
check "root file system grown" "first boot grew the root partition"
check "switchboard-firstboot: done" "first boot finished"
check "Started avahi-daemon.service" "avahi-daemon (switchboard.local) started"
check "Hostname set to <switchboard>" "hostname switchboard"
if grep -q 'FAILED' <<<"$console"; then
    grep 'FAILED' <<<"$console" >&2
    failed=1
fi
[ "$web" != 0 ] || { echo "the web admin did not answer within $MINUTES min" >&2; failed=1; }
[ "$sip" != 0 ] || { echo "the switch did not answer OPTIONS within $MINUTES min" >&2; failed=1; }
[ "$failed" = 0 ] && echo "boot test passed" >&2
exit "$failed"
