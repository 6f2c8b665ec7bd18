#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Build the Switchboard SD-card image (Debian bookworm, arm64, Raspberry Pi 3/4/400/CM4):
#
#   rootfs    debootstrap a minbase bookworm (cached as a tarball; every build starts from a fresh copy)
#   product   the product itself (product.sh, in the chroot): user, data folder, venv from a wheel
#             of this repo, systemd units, hostname + mDNS, journal in RAM, tmpfs, first-boot secrets
#   board     arm64 only: the Pi's kernel and boot firmware from Debian (board.sh, in the chroot);
#             last of the chroot stages, so the initramfs is made once (slow under emulation)
#   assemble  the image file: MBR, FAT boot partition + ext4 root, built without loop devices
#
# Usage: image/build.sh [--arch arm64|amd64] [--workdir DIR] [--out FILE] [--snapshot STAMP]
#                       [--mirror URL] [STAGE...]
# With no stage: all of them for arm64; rootfs and product for amd64 (which is only for CI:
# no Pi boots it). See image/README.md for what it needs and how long it takes.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

ARCH=${ARCH:-arm64}
SUITE=${SUITE:-bookworm}
# Reproducibility: SNAPSHOT=20250520T000000Z (any timestamp snapshot.debian.org knows) builds from
# the archive exactly as it was then, so two builds months apart get the same package versions.
# Empty: debootstrap's default mirror, i.e. bookworm's current point release plus updates.
SNAPSHOT=${SNAPSHOT:-}
SNAPSHOT_BASE=${SNAPSHOT_BASE:-http://snapshot.debian.org/archive}
MIRROR=${MIRROR:-}
WORKDIR=${WORKDIR:-}
OUT=${OUT:-}
PYTHON=${PYTHON:-python3}
# Sizes in MiB. ROOT_MB=0: what the root file system holds plus ROOT_SPARE_MB (the first boot
# grows the root partition to the whole SD card anyway).
BOOT_MB=${BOOT_MB:-256}
ROOT_MB=${ROOT_MB:-0}
ROOT_SPARE_MB=${ROOT_SPARE_MB:-384}
COMPONENTS=main,non-free-firmware
BUILD_CA_BUNDLE=${BUILD_CA_BUNDLE:-${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}

STAGES=()
while [ $# -gt 0 ]; do
    case $1 in
    --arch) ARCH=$2 && shift 2 ;;
    --workdir) WORKDIR=$2 && shift 2 ;;
    --out) OUT=$2 && shift 2 ;;
    --snapshot) SNAPSHOT=$2 && shift 2 ;;
    --mirror) MIRROR=$2 && shift 2 ;;
    -h | --help)
        sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    rootfs | board | product | assemble) STAGES+=("$1") && shift ;;
    *) die "unknown argument: $1 (try --help)" ;;
    esac
done

case $ARCH in arm64 | amd64) ;; *) die "--arch must be arm64 or amd64, not $ARCH" ;; esac
if [ ${#STAGES[@]} -eq 0 ]; then
    if [ "$ARCH" = arm64 ]; then STAGES=(rootfs product board assemble); else STAGES=(rootfs product); fi
fi
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot and mounts need it)"
if [ -n "$SNAPSHOT" ] && [ -z "$MIRROR" ]; then
    MIRROR=$SNAPSHOT_BASE/debian/$SNAPSHOT
fi
WORKDIR=${WORKDIR:-/var/cache/switchboard-image/$ARCH}
OUT=${OUT:-$WORKDIR/switchboard-$SUITE-$ARCH.img}
mkdir -p "$WORKDIR"
WORKDIR=$(realpath "$WORKDIR")
ROOTFS=$WORKDIR/rootfs
BASE_TAR=$WORKDIR/base-$SUITE-$ARCH.tar
TIMINGS=$WORKDIR/timings.log
STAGE_IN_CHROOT=/tmp/switchboard-stage
HOST_ARCH=$(dpkg --print-architecture)

cleanup() {
    chroot_umount
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- rootfs -------------------------------------------------------------------------------------

qemu_name() { case $1 in arm64) echo aarch64 ;; amd64) echo x86_64 ;; esac }

check_emulation() {
    [ "$ARCH" = "$HOST_ARCH" ] && return 0
    local entry
    entry=/proc/sys/fs/binfmt_misc/qemu-$(qemu_name "$ARCH")
    if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
        mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
    fi
    if [ ! -e "$entry" ] && command -v update-binfmts >/dev/null; then
        update-binfmts --enable "qemu-$(qemu_name "$ARCH")" 2>/dev/null || true
    fi
    # The F flag makes the kernel open the interpreter now, so it works inside the chroot too.
    if ! grep -q '^enabled' "$entry" 2>/dev/null || ! grep -q '^flags:.*F' "$entry"; then
        die "no $ARCH emulation on this $HOST_ARCH host: apt-get install qemu-user-static binfmt-support (binfmt_misc with the F flag), or build --arch $HOST_ARCH"
    fi
}

sources_list() { # MIRROR-URL: the image's apt sources (security from the matching archive)
    local security
    security=$(printf '%s' "$1" | sed 's#/debian\(/\|$\)#/debian-security\1#')
    printf 'deb %s %s %s\n' "$1" "$SUITE" "${COMPONENTS//,/ }"
    printf 'deb %s %s-updates %s\n' "$1" "$SUITE" "${COMPONENTS//,/ }"
    printf 'deb %s %s-security %s\n' "$security" "$SUITE" "${COMPONENTS//,/ }"
}

stage_rootfs() {
    stage_begin rootfs
    local key
    key="suite=$SUITE arch=$ARCH variant=minbase components=$COMPONENTS mirror=${MIRROR:-default} $(debootstrap --version 2>/dev/null | head -n1) recipe=1"
    remove_tree "$ROOTFS"
    if [ -f "$BASE_TAR" ] && [ "$(cat "$BASE_TAR.key" 2>/dev/null)" = "$key" ]; then
        log "base rootfs from cache: $BASE_TAR"
    else
        check_emulation
        command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap"
        mkdir -p "$ROOTFS" "$WORKDIR/cache/debootstrap"
        local -a args=(--variant=minbase --arch="$ARCH" --components="$COMPONENTS"
            --cache-dir="$WORKDIR/cache/debootstrap")
        [ "$ARCH" = "$HOST_ARCH" ] || args+=(--foreign)
        # An empty MIRROR lets debootstrap pick its default mirror.
        # shellcheck disable=SC2086
        debootstrap "${args[@]}" "$SUITE" "$ROOTFS" $MIRROR
        if [ "$ARCH" != "$HOST_ARCH" ]; then
            chroot "$ROOTFS" /debootstrap/debootstrap --second-stage
        fi
        local mirror_used
        mirror_used=$(awk '$1 == "deb" { print $2; exit }' "$ROOTFS/etc/apt/sources.list")
        sources_list "$mirror_used" >"$ROOTFS/etc/apt/sources.list"
        if [ -n "$SNAPSHOT" ]; then
            # A snapshot's updates and security suites are past their Valid-Until by design.
            echo 'Acquire::Check-Valid-Until "false";' >"$ROOTFS/etc/apt/apt.conf.d/10snapshot"
        fi
        rm -f "$BASE_TAR.key"
        tar --numeric-owner --xattrs --xattrs-include='*' -cpf "$BASE_TAR.partial" -C "$ROOTFS" .
        mv "$BASE_TAR.partial" "$BASE_TAR"
        printf '%s' "$key" >"$BASE_TAR.key"
        remove_tree "$ROOTFS"
    fi
    mkdir -p "$ROOTFS"
    tar --numeric-owner --xattrs --xattrs-include='*' -xpf "$BASE_TAR" -C "$ROOTFS"
    stage_end rootfs "$TIMINGS"
}

# --- stages run in the chroot -------------------------------------------------------------------

require_rootfs() {
    [ -x "$ROOTFS/bin/sh" ] || die "no rootfs in $ROOTFS: run the rootfs stage first"
    [ "$ARCH" = "$HOST_ARCH" ] || check_emulation
}

# Copy a staging folder into the rootfs and run SCRIPT in the chroot with the download caches bound.
run_stage_in_chroot() { # STAGING-DIR SCRIPT-NAME
    remove_tree "$ROOTFS$STAGE_IN_CHROOT"
    cp -a "$1" "$ROOTFS$STAGE_IN_CHROOT"
    chroot_mount "$ROOTFS"
    chroot_bind "$WORKDIR/cache/apt" "$ROOTFS/var/cache/apt/archives"
    chroot_bind "$WORKDIR/cache/pip" "$ROOTFS/var/cache/switchboard-pip"
    # pip in the chroot trusts what the build host trusts (a host behind a TLS-inspecting proxy
    # has that proxy's CA there); the copy lives in the chroot's /run tmpfs, not in the image.
    local ca=/run/switchboard-build-ca.crt
    if [ -r "$BUILD_CA_BUNDLE" ]; then cp -L "$BUILD_CA_BUNDLE" "$ROOTFS$ca"; else ca=; fi
    run_in_chroot "$ROOTFS" PIP_CACHE_DIR=/var/cache/switchboard-pip ${ca:+PIP_CERT=$ca} \
        /bin/bash "$STAGE_IN_CHROOT/$2"
    chroot_umount
    remove_tree "$ROOTFS$STAGE_IN_CHROOT"
    rmdir "$ROOTFS/var/cache/switchboard-pip" 2>/dev/null || true
}

# The product as a wheel, built from a copy of the work tree (tracked and new files, not ignored
# ones), so the build never writes into the repo.
build_wheel() { # WHEEL-DIR
    local src=$WORKDIR/src
    remove_tree "$src"
    mkdir -p "$src" "$1"
    if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
            tar --null --ignore-failed-read -T - -cf -) | tar -xf - -C "$src"
    else
        tar -C "$REPO" --exclude=./.venv --exclude=./.git -cf - . | tar -xf - -C "$src"
    fi
    PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$1" "$src"
    remove_tree "$src"
}

stage_product() {
    stage_begin product
    require_rootfs
    local staging=$WORKDIR/staging
    remove_tree "$staging"
    mkdir -p "$staging/systemd"
    build_wheel "$staging/wheels"
    cp -a "$HERE/product.sh" "$HERE/constraints.txt" "$HERE/files" "$staging/"
    # The product's units, whatever of them exist (systemd/ is written alongside this recipe).
    local unit
    for unit in "$REPO"/systemd/*.service "$REPO"/systemd/*.target; do
        [ -e "$unit" ] && cp -a "$unit" "$staging/systemd/"
    done
    run_stage_in_chroot "$staging" product.sh
    remove_tree "$staging"
    stage_end product "$TIMINGS"
}

stage_board() {
    stage_begin board
    [ "$ARCH" = arm64 ] || die "the board stage (Pi kernel and firmware) is for --arch arm64 only"
    require_rootfs
    local staging=$WORKDIR/staging
    remove_tree "$staging"
    mkdir -p "$staging"
    cp -a "$HERE/board.sh" "$staging/"
    run_stage_in_chroot "$staging" board.sh
    remove_tree "$staging"
    stage_end board "$TIMINGS"
}

# --- assemble -----------------------------------------------------------------------------------

# Fixed identifiers, so the same root file system gives the same partition table and file systems.
DISK_ID=0x53574244
BOOT_VOLUME_ID=53574246
ROOT_UUID=5357424f-0a0a-4c1e-9b0d-000000000001

stage_assemble() {
    stage_begin assemble
    [ -x "$ROOTFS/bin/sh" ] || die "no rootfs in $ROOTFS: run the earlier stages first"
    assert_nothing_mounted_under "$ROOTFS"
    local tool
    for tool in sfdisk mkfs.vfat fsck.vfat mcopy mkfs.ext4 e2fsck; do
        command -v "$tool" >/dev/null || die "$tool not found: apt-get install fdisk dosfstools mtools e2fsprogs"
    done
    local firmware=$ROOTFS/boot/firmware
    if [ "$ARCH" = arm64 ]; then
        local need
        for need in start4.elf fixup4.dat config.txt cmdline.txt; do
            [ -f "$firmware/$need" ] || die "no $need in $firmware: run the board stage first"
        done
    else
        log "--arch $ARCH: the image shows the layout only; no Pi boots it"
    fi
    mkdir -p "$firmware"

    local parts=$WORKDIR/parts
    remove_tree "$parts"
    mkdir -p "$parts"
    # The boot partition's files are moved aside so the root file system has an empty
    # /boot/firmware to mount it on; they go back whatever happens.
    local aside=$parts/firmware
    mv "$firmware" "$aside"
    mkdir -p "$firmware"
    trap 'rmdir "$ROOTFS/boot/firmware" 2>/dev/null && mv "$WORKDIR/parts/firmware" "$ROOTFS/boot/firmware"; cleanup' EXIT

    local used_mb root_mb=$ROOT_MB
    used_mb=$(($(du -sx --block-size=1M "$ROOTFS" | cut -f1)))
    if [ "$root_mb" = 0 ]; then
        root_mb=$((used_mb + used_mb / 5 + ROOT_SPARE_MB))
    fi
    log "root file system: ${used_mb} MiB used, partition ${root_mb} MiB; boot ${BOOT_MB} MiB"

    mkfs.vfat -F 32 -n RASPIFIRM -i "$BOOT_VOLUME_ID" -C "$parts/boot.vfat" $((BOOT_MB * 1024)) >/dev/null
    if [ -n "$(ls -A "$aside")" ]; then
        MTOOLS_SKIP_CHECK=1 mcopy -s -p -m -i "$parts/boot.vfat" "$aside"/* ::/
    fi
    fsck.vfat -n "$parts/boot.vfat" >/dev/null

    # mkfs.ext4 -d copies the tree (owners, modes, links, device nodes, xattrs) with no mount.
    E2FSPROGS_FAKE_TIME=${SOURCE_DATE_EPOCH:-$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)} \
        mkfs.ext4 -q -F -L RASPIROOT -U "$ROOT_UUID" -E "hash_seed=$ROOT_UUID" \
        -d "$ROOTFS" "$parts/root.ext4" "${root_mb}M"
    e2fsck -fn "$parts/root.ext4" >/dev/null

    rmdir "$firmware"
    mv "$aside" "$firmware"
    trap cleanup EXIT

    # MBR: the Pi's boot ROM reads the first FAT partition. 4 MiB alignment for SD erase blocks.
    local boot_start=8192 boot_sectors=$((BOOT_MB * 2048)) root_sectors=$((root_mb * 2048))
    local root_start=$((boot_start + boot_sectors))
    local total_sectors=$((root_start + root_sectors))
    mkdir -p "$(dirname "$OUT")"
    rm -f "$OUT.partial"
    truncate -s $((total_sectors * 512)) "$OUT.partial"
    sfdisk --quiet "$OUT.partial" <<EOF
label: dos
label-id: $DISK_ID
unit: sectors

start=$boot_start, size=$boot_sectors, type=c, bootable
start=$root_start, size=$root_sectors, type=83
EOF
    dd if="$parts/boot.vfat" of="$OUT.partial" bs=4M seek=$((boot_start * 512)) oflag=seek_bytes \
        conv=notrunc,sparse status=none
    dd if="$parts/root.ext4" of="$OUT.partial" bs=4M seek=$((root_start * 512)) oflag=seek_bytes \
        conv=notrunc,sparse status=none
    mv "$OUT.partial" "$OUT"
    remove_tree "$parts"
    sfdisk --dump "$OUT" >&2
    log "image: $OUT ($((total_sectors / 2048)) MiB); write it with: dd if=$OUT of=/dev/sdX bs=4M conv=fsync"
    stage_end assemble "$TIMINGS"
}

log "arch=$ARCH suite=$SUITE mirror=${MIRROR:-debootstrap default} workdir=$WORKDIR stages=${STAGES[*]}"
for stage in "${STAGES[@]}"; do
    "stage_$stage"
done
