#!/bin/bash
# The product stage. Runs INSIDE the image's chroot (build.sh mounts /proc, /sys, /dev and /run
# and copies this folder to /tmp/switchboard-stage), so CI runs exactly what the image gets:
#
#   wheels/switchboard-*.whl   the product, built from the repo outside the chroot
#   constraints.txt            the exact versions of its Python dependencies (reproducible venv)
#   systemd/*.service|target   the product's units, as far as systemd/ has them
#   files/                     first-boot script and unit, configuration files
#
# It works on any Debian bookworm root (minbase is enough) of either architecture.
set -euo pipefail

STAGE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export DEBIAN_FRONTEND=noninteractive
APP_USER=switchboard
DATA=/var/lib/switchboard
VENV=/opt/switchboard/venv
UNITS=/usr/lib/systemd/system

log() { printf 'product: %s\n' "$*" >&2; }

# No service starts inside the chroot while packages install.
printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
chmod 0755 /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT

# --- packages the product needs at run time ------------------------------------------------------
PACKAGES=(
    # init, devices, network: DHCP on the wired port, DNS, clock (the Pi has no RTC)
    systemd systemd-sysv udev dbus kmod iproute2 iputils-ping netbase
    systemd-resolved systemd-timesyncd
    # switchboard.local over mDNS
    avahi-daemon libnss-mdns
    # the product: Python with venv; PyAudio and pyserial for the line cards come from Debian
    # (the venv sees them through --system-site-packages; PyAudio would need a compiler otherwise)
    python3 python3-venv python3-serial python3-pyaudio alsa-utils
    # first-boot secrets, TLS, growing the root partition, looking at the database
    openssl ca-certificates fdisk e2fsprogs dosfstools sqlite3 tzdata
)
log "apt: ${PACKAGES[*]}"
apt-get update -q
apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${PACKAGES[@]}"

# --- the system user and the data folder ---------------------------------------------------------
# The services run as this user; /var/lib/switchboard is the only place they may write.
getent group gpio >/dev/null || groupadd --system gpio
if ! getent passwd "$APP_USER" >/dev/null; then
    useradd --system --user-group --home-dir "$DATA" --no-create-home \
        --shell /usr/sbin/nologin --comment "Switchboard phone system" "$APP_USER"
fi
# The line cards: serial modems (dialout), sound (audio), the GPIO relay and ring detector (gpio).
usermod --append --groups dialout,audio,gpio "$APP_USER"
install -d -o "$APP_USER" -g "$APP_USER" -m 0750 "$DATA"

# --- the product in its own venv -----------------------------------------------------------------
shopt -s nullglob
wheels=("$STAGE"/wheels/switchboard-*.whl)
[ ${#wheels[@]} -eq 1 ] || { log "expected one switchboard wheel, found ${#wheels[@]}"; exit 1; }
rm -rf "$VENV"
python3 -m venv --system-site-packages "$VENV"
PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
    "$VENV/bin/pip" install --quiet --constraint "$STAGE/constraints.txt" "${wheels[0]}"
ln -sfn "$VENV/bin/pbx" /usr/local/bin/pbx
log "installed: $("$VENV/bin/pbx" --version)"

# --- systemd units -------------------------------------------------------------------------------
units=("$STAGE"/systemd/*.service "$STAGE"/systemd/*.target)
for unit in "${units[@]}"; do
    install -m 0644 "$unit" "$UNITS/"
done
install -m 0755 "$STAGE/files/switchboard-firstboot" /usr/local/sbin/switchboard-firstboot
install -m 0644 "$STAGE/files/switchboard-firstboot.service" "$UNITS/"
systemctl enable switchboard-firstboot.service
if [ -f "$UNITS/switchboard.target" ]; then
    systemctl enable switchboard.target
else
    # No target (yet): enable each of the product's plain services that says where it belongs.
    for unit in "${units[@]}"; do
        name=$(basename "$unit")
        case $name in *@.service) continue ;; esac
        if grep -q '^\[Install\]' "$unit"; then systemctl enable "$name"; fi
    done
fi
log "units: $(find "$UNITS" -maxdepth 1 \( -name 'switchboard*' -o -name 'pbx*' \) -printf '%f ')"

# --- network name, journal, network, writes off the SD card --------------------------------------
echo switchboard >/etc/hostname
cat >/etc/hosts <<'EOF'
127.0.0.1	localhost
127.0.1.1	switchboard
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
EOF
install -D -m 0644 "$STAGE/files/journald.conf" /etc/systemd/journald.conf.d/10-switchboard.conf
install -D -m 0644 "$STAGE/files/resolved.conf" /etc/systemd/resolved.conf.d/10-switchboard.conf
install -D -m 0644 "$STAGE/files/wired.network" /etc/systemd/network/20-wired.network
install -D -m 0644 "$STAGE/files/99-switchboard-gpio.rules" /etc/udev/rules.d/99-switchboard-gpio.rules
install -D -m 0644 "$STAGE/files/tmpfiles.conf" /usr/lib/tmpfiles.d/switchboard.conf
install -m 0644 "$STAGE/files/fstab" /etc/fstab
# The switch's settings file (pbx.service passes it with --config).
install -D -m 0644 "$STAGE/files/switchboard.toml" /etc/switchboard/switchboard.toml
systemctl enable systemd-networkd.service systemd-resolved.service systemd-timesyncd.service \
    avahi-daemon.service
# Daily jobs that write to the SD card for nothing on an appliance.
for timer in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer; do
    if [ -e "/usr/lib/systemd/system/$timer" ] || [ -e "/lib/systemd/system/$timer" ]; then
        systemctl mask "$timer"
    fi
done

# --- nothing machine-specific or build-specific stays in the image -------------------------------
# Every box gets its own machine-id at first boot (systemd, or switchboard-firstboot).
: >/etc/machine-id
ln -sfn /etc/machine-id /var/lib/dbus/machine-id
rm -f /var/lib/systemd/random-seed /var/lib/systemd/credential.secret
ln -sfn ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf
rm -rf /var/lib/apt/lists/* /root/.cache
mkdir -p /var/lib/apt/lists/partial
if ! mountpoint -q /var/cache/apt/archives; then apt-get clean; fi
find /var/log -type f -delete
log "done"
