#!/usr/bin/env bash
# Makes sure the real components the tests use are installed: OpenSSH server and
# client, paramiko for the system python, and Chromium for the status page test.
# As root on Debian it installs what is missing; elsewhere it says what to install
# (the tests that need a missing component are then skipped with that reason).
set -euo pipefail

missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/bin/ssh ] || missing+=(openssh-client)
/usr/bin/python3 -c 'import paramiko' >/dev/null 2>&1 || missing+=(python3-paramiko)
[ -x /usr/bin/chromium ] || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "test prerequisites: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "test prerequisites missing: ${missing[*]} (apt-get install ${missing[*]}); tests needing them will be skipped" >&2
fi
