#!/usr/bin/env bash
# Makes sure what `npm run bench` compares against is installed: HAProxy, a C compiler
# for the native backend and client, OpenSSH for the real-sshd rows, and redis-server
# for the shared-store column (--alt-store).
set -euo pipefail

missing=()
[ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
[ -x /usr/bin/ssh ] || missing+=(openssh-client)
[ -x /usr/bin/redis-server ] || [ -x /usr/bin/valkey-server ] || missing+=(redis-server)

exec "$(dirname "$0")/install-missing-packages.sh" "bench prerequisites" fail "${missing[@]}"
