#!/usr/bin/env bash
# Unpacks openssh-server 10.0 from Debian 12's bookworm-backports into
# /var/cache/ssh-banner-proxy/openssh-10 (or $SBP_OPENSSH10_ROOT) without installing it:
# the system sshd stays 9.2. Tests start that sshd by absolute path with SshdSessionPath and
# SshdAuthPath pointing into the directory. Root on Debian 12 only; otherwise it says why.
set -euo pipefail
root="${SBP_OPENSSH10_ROOT:-/var/cache/ssh-banner-proxy/openssh-10}"
[ -x "$root/usr/sbin/sshd" ] && exit 0
if [ "$(id -u)" != 0 ] || ! grep -q '^12' /etc/debian_version 2>/dev/null; then
  echo "OpenSSH 10 not unpacked (needs root on Debian 12): the OpenSSH 10 test cases are skipped" >&2
  exit 0
fi
sources=/etc/apt/sources.list.d/bookworm-backports.sources
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > "$sources"
  apt-get update -qq
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 777 "$work"
( cd "$work" && apt-get download -qq openssh-server/bookworm-backports )
mkdir -p "$root"
dpkg -x "$work"/openssh-server_*.deb "$root"
"$root/usr/sbin/sshd" -V 2>&1 | head -1 >&2
