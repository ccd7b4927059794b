#!/usr/bin/env bash
# Makes sure the real components the tests use are installed: OpenSSH server and
# client, paramiko for the system python, Chromium for the status page test, promtool
# (Debian's prometheus) for the alert rules, iproute2 and iptables for the network-namespace tests
# (transparent source addresses: docs/identity.md),
# asyncssh and Dropbear's dbclient for the authentication matrix (docs/penalties.md),
# redis-server for the shared store of replicas (docs/cluster.md), dnsmasq for DNS discovery, systemd's tools for socket activation.
# Where they cannot be installed, the tests that need them are skipped with the reason.
set -euo pipefail

missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/bin/ssh ] || missing+=(openssh-client)
/usr/bin/python3 -c 'import paramiko' >/dev/null 2>&1 || missing+=(python3-paramiko)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/promtool ] || missing+=(prometheus)
[ -x /usr/sbin/ip ] || missing+=(iproute2)
[ -x /usr/sbin/iptables ] || missing+=(iptables)
/usr/bin/python3 -c 'import asyncssh' >/dev/null 2>&1 || missing+=(python3-asyncssh)
[ -x /usr/bin/dbclient ] || missing+=(dropbear-bin)
[ -x /usr/bin/redis-server ] || [ -x /usr/bin/valkey-server ] || missing+=(redis-server)
# A real DNS server on a loopback port for discovery (docs/discovery.md); -base: no service is started.
[ -x /usr/sbin/dnsmasq ] || missing+=(dnsmasq-base)
# systemd-socket-activate and systemd-analyze, for the socket activation and unit tests (docs/deploy.md).
[ -x /usr/bin/systemd-socket-activate ] && [ -x /usr/bin/systemd-analyze ] || missing+=(systemd)

"$(dirname "$0")/install-missing-packages.sh" "test prerequisites" warn "${missing[@]}"

# A local account with a password, for password and keyboard-interactive logins in the
# authentication matrix (test/fixtures/clients/auth-matrix.ts); only as root, never reused elsewhere.
if [ "$(id -u)" = 0 ] && ! id sbp-auth-test >/dev/null 2>&1; then
  useradd --create-home --shell /bin/sh sbp-auth-test
  echo 'sbp-auth-test:sbp-auth-test-pw' | chpasswd
fi

# OpenSSH 10.0 beside the system's 9.2, never replacing it: Debian 12's bookworm-backports
# package, unpacked (dpkg -x) where test/fixtures/sshd/sshd-versions.ts looks for it. Nothing is
# taken from a newer Debian release. Where this cannot be done, the 10.0 cases are skipped.
exec "$(dirname "$0")/unpack-openssh10.sh"
