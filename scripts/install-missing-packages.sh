#!/usr/bin/env bash
# Installs Debian packages named as arguments: as root with apt-get, or says what to
# install. Usage: install-missing-packages.sh PURPOSE ON_FAILURE PACKAGE...
#   ON_FAILURE: "warn" (print and exit 0) or "fail" (print and exit 1) when it cannot install.
set -euo pipefail
purpose="$1"; on_failure="$2"; shift 2
[ $# -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "$purpose: installing $*" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  exit 0
fi
echo "$purpose missing: $* (apt-get install $*)" >&2
[ "$on_failure" = warn ] || exit 1
