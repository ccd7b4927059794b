#!/usr/bin/env bash
# Makes sure what `npm run bench` compares against is installed: HAProxy, a C compiler
# for the native backend and client, and OpenSSH for the real-sshd rows. As root on
# Debian it installs what is missing; elsewhere it says what to install and stops.
set -euo pipefail

missing=()
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/bin/ssh ] || missing+=(openssh-client)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "bench prerequisites: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "bench prerequisites missing: ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 1
fi
