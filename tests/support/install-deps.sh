#!/usr/bin/env bash
# What the integration tests need besides Rust, installed when missing:
# Python's aiosmtpd (the real SMTP server mails are delivered to), Debian's
# chromium and chromedriver (the dashboard tests), systemd-analyze (the
# unit file test), journalctl and systemd-journal-remote (the journald
# source, on journal files written from the fixtures), promtool (the
# Prometheus rules), lua5.4 (the Fluent Bit example's script), cargo-deb
# (the package), lintian, binutils and man-db (its checks), zsh and fish
# (the completions), Postfix with swaks and Cyrus SASL's sasldb (the
# policy service's end-to-end test runs a private Postfix instance; it
# needs root), strace (slow fsyncs for the release test) and setpriv
# (clients as other users). Debian/Ubuntu; run as root or with sudo
# available.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v systemd-analyze >/dev/null || missing+=(systemd)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
# The system's own, which another user (setpriv) can run.
[ -x /usr/bin/python3 ] || missing+=(python3)
command -v strace >/dev/null || missing+=(strace)
command -v setpriv >/dev/null || missing+=(util-linux)
command -v promtool >/dev/null || missing+=(prometheus)
[ -x /lib/systemd/systemd-journal-remote ] || [ -x /usr/lib/systemd/systemd-journal-remote ] ||
  missing+=(systemd-journal-remote)
command -v lua5.4 >/dev/null || missing+=(lua5.4)
# The package's checks: lintian, readelf, man; the completions' shells.
command -v lintian >/dev/null || missing+=(lintian)
command -v readelf >/dev/null || missing+=(binutils)
command -v man >/dev/null || missing+=(man-db)
command -v zsh >/dev/null || missing+=(zsh)
command -v fish >/dev/null || missing+=(fish)
command -v postfix >/dev/null || missing+=(postfix)
command -v swaks >/dev/null || missing+=(swaks)
command -v saslpasswd2 >/dev/null || missing+=(sasl2-bin)
[ -e /usr/lib/x86_64-linux-gnu/sasl2/libsasldb.so ] || [ -n "$(find /usr/lib -name 'libsasldb.so*' -print -quit 2>/dev/null)" ] ||
  missing+=(libsasl2-modules)
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
python3 -c 'import aiosmtpd' 2>/dev/null ||
  python3 -m pip install -q --root-user-action=ignore aiosmtpd 2>/dev/null ||
  python3 -m pip install -q --break-system-packages --root-user-action=ignore aiosmtpd
# cargo-deb: the package test packs the binary with it.
command -v cargo-deb >/dev/null || cargo install --locked --quiet cargo-deb
