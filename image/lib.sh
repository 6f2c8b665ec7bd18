# shellcheck shell=bash
# Helpers the image stages share: logging, timing, and chroot mounts that are always undone.
# Sourced by build.sh; nothing here runs on its own.

log() { printf '%s image: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# Mount points made by chroot_mount, newest last; chroot_umount undoes them in reverse order.
# build.sh runs chroot_umount from its EXIT trap, so an error or Ctrl-C never leaves /dev, /proc
# or /sys of the host mounted inside a build folder.
CHROOT_MOUNTS=()

_mount_into() { # MOUNTPOINT MOUNT-ARGS...
    local target=$1
    shift
    mkdir -p "$target"
    mount "$@" "$target"
    CHROOT_MOUNTS+=("$target")
}

# What a chroot needs to install packages: /proc, /sys (read-only), /dev and /dev/pts from the
# host, an empty /run (tmpfs) holding a copy of the host's resolver configuration, so DNS works
# whether /etc/resolv.conf is a file or systemd-resolved's symlink into /run.
chroot_mount() { # ROOTFS
    local root=$1
    _mount_into "$root/proc" -t proc proc
    _mount_into "$root/sys" -t sysfs -o ro sysfs
    _mount_into "$root/dev" --bind /dev
    _mount_into "$root/dev/pts" --bind /dev/pts
    _mount_into "$root/run" -t tmpfs -o mode=0755,size=64M tmpfs
    mkdir -p "$root/run/systemd/resolve"
    cp -L /etc/resolv.conf "$root/run/systemd/resolve/stub-resolv.conf"
    cp -L /etc/resolv.conf "$root/run/systemd/resolve/resolv.conf"
    if [ ! -L "$root/etc/resolv.conf" ]; then
        cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    fi
}

# Bind a host folder (a download cache) into the chroot; undone with the rest.
chroot_bind() { # HOST-DIR ROOTFS-PATH
    mkdir -p "$1"
    _mount_into "$2" --bind "$1"
}

chroot_umount() {
    local i target
    for ((i = ${#CHROOT_MOUNTS[@]} - 1; i >= 0; i--)); do
        target=${CHROOT_MOUNTS[i]}
        if mountpoint -q "$target"; then
            umount "$target" 2>/dev/null || umount --lazy "$target" || log "could not unmount $target"
        fi
    done
    CHROOT_MOUNTS=()
}

# Refuse to touch a folder that still has something mounted under it (a crashed run from before
# this trap existed, or a hand-made mount): deleting it would delete through /dev or /proc.
assert_nothing_mounted_under() { # DIR
    local dir
    dir=$(realpath -m "$1")
    if findmnt -rn -o TARGET | grep -qF -- "$dir/"; then
        die "something is still mounted under $dir (see findmnt); unmount it first"
    fi
}

# Remove a build folder without ever crossing into a mounted file system.
remove_tree() { # DIR
    [ -e "$1" ] || return 0
    assert_nothing_mounted_under "$1"
    rm -rf --one-file-system -- "$1"
}

# Run a chroot command with a clean environment (no host PIP_*, proxies or locale).
run_in_chroot() { # ROOTFS COMMAND...
    local root=$1
    shift
    chroot "$root" /usr/bin/env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
        "$@"
}

# Record how long a stage took, for image/README.md's table (one "stage seconds" line each).
STAGE_STARTED=0
stage_begin() {
    STAGE_STARTED=$(date +%s)
    log "stage $1: start"
}
stage_end() { # STAGE TIMINGS-FILE
    local took=$(($(date +%s) - STAGE_STARTED))
    log "stage $1: done in ${took}s"
    printf '%s %s %ss\n' "$(date -u +%FT%TZ)" "$1" "$took" >>"$2"
}
