#!/bin/bash
# The board stage (arm64 only). Runs INSIDE the image's chroot, like product.sh: Debian's own
# kernel and Raspberry Pi boot firmware, which put everything the Pi's boot ROM reads into
# /boot/firmware (build.sh's assemble stage makes that folder the FAT boot partition).
#
#   linux-image-arm64   Debian's arm64 kernel (device trees for the Pi 3, 4, 400 and CM4 included)
#   raspi-firmware      the GPU firmware (start*.elf, fixup*.dat, bootcode.bin) and the kernel hook
#                       that writes config.txt and cmdline.txt from /etc/default/raspi-firmware
#
# Debian bookworm's kernel and firmware do not boot a Raspberry Pi 5.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

log() { printf 'board: %s\n' "$*" >&2; }

printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT

mkdir -p /boot/firmware
# Written before the package installs it (dpkg keeps ours: --force-confold), so the kernel hook
# writes the right cmdline.txt the first time: root by label (the same image boots from an SD
# card or a USB disk), no CMA override (wrong on a Pi 4; nothing here needs the GPU), the serial
# console on the GPIO header's UART plus HDMI.
cat >/etc/default/raspi-firmware <<'EOF'
# Switchboard image (image/board.sh). See the package's own copy of this file for every setting.
ROOTPART="LABEL=RASPIROOT"
CMA=0
CONSOLES="tty0 ttyS1,115200"
EOF

apt-get update -q
apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    linux-image-arm64 raspi-firmware initramfs-tools zstd dosfstools e2fsprogs

for need in start4.elf fixup4.dat bootcode.bin config.txt cmdline.txt; do
    [ -f "/boot/firmware/$need" ] || { log "missing /boot/firmware/$need"; exit 1; }
done
ls /boot/firmware/vmlinuz-* /boot/firmware/initrd.img-* /boot/firmware/bcm2711-rpi-4-b.dtb >/dev/null
log "cmdline.txt: $(cat /boot/firmware/cmdline.txt)"
rm -rf /var/lib/apt/lists/* /root/.cache
find /var/log -type f -delete
mkdir -p /var/lib/apt/lists/partial
if ! mountpoint -q /var/cache/apt/archives; then apt-get clean; fi
log "done"
