#!/usr/bin/env bash
# Performs the Dockerfile's build steps without a Docker engine, in a temporary
# directory, then starts the result the way the image would and checks it:
#   1. build stage: copy the .dockerignore allow-list, npm ci, npm run build, npm prune --omit=dev
#   2. runtime stage: package.json + node_modules + dist + config, the baked-in config
#   3. start `node dist/cli.js serve` as uid 1000 (the image's USER) when running as root,
#      run the HEALTHCHECK command from the Dockerfile, check /readyz and the SSH port,
#      then SIGTERM and expect exit 0.
# Usage: scripts/docker-build-check.sh [--keep]
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/sbp-docker-check.XXXXXX")"
keep=0; [[ "${1:-}" == "--keep" ]] && keep=1
pid=""
cleanup() {
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  if [[ $keep -eq 0 ]]; then rm -rf "$work"; else echo "kept $work"; fi
}
trap cleanup EXIT
step() { printf '==> %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

step "build stage in $work/build"
mkdir -p "$work/build"
# The .dockerignore allow-list: exactly what `COPY` can see.
for path in package.json package-lock.json tsconfig.json tsconfig.build.json src config; do
  cp -R "$repo/$path" "$work/build/$path"
done
cd "$work/build"
npm ci --no-audit --no-fund --prefer-offline --loglevel=error
npm run build --silent
npm prune --omit=dev --no-audit --no-fund --loglevel=error
[[ -f dist/cli.js ]] || fail "dist/cli.js missing after the build"
[[ ! -d node_modules/typescript ]] || fail "dev dependencies survived npm prune"
[[ -d node_modules/pino && -d node_modules/yargs ]] || fail "runtime dependencies missing"

step "runtime stage in $work/image"
mkdir -p "$work/image/app" "$work/image/etc"
cp -R package.json node_modules dist config "$work/image/app/"
cp "$repo/config/container.yaml" "$work/image/etc/config.yaml"
chmod -R a+rX,go-w "$work/image"
du -sh "$work/image/app" | sed 's/^/    size: /'

ssh_port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
admin_port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
run_as=()
if [[ "$(id -u)" == "0" ]] && command -v setpriv >/dev/null; then
  chmod a+rx "$work"
  run_as=(setpriv --reuid 1000 --regid 1000 --clear-groups)
fi

# The ENTRYPOINT's Node flags (e.g. --max-semi-space-size=16), as the image starts it.
read -r -a node_flags <<<"$(sed -n 's/^ENTRYPOINT \[.*"node", \(.*\), "\/app\/dist\/cli\.js"\]$/\1/p' "$repo/Dockerfile" | tr -d '",')"
step "start: node ${node_flags[*]} dist/cli.js serve (image config, listener 127.0.0.1:$ssh_port, admin 127.0.0.1:$admin_port) ${run_as[*]:+as uid 1000}"
cd "$work/image/app"
# As the image runs it: the config and the admin address from the ENV the Dockerfile and an
# operator set (SSH_BANNER_PROXY_CONFIG, SSH_BANNER_PROXY_ADMIN), which the HEALTHCHECK reads too.
export SSH_BANNER_PROXY_CONFIG="$work/image/etc/config.yaml" SSH_BANNER_PROXY_ADMIN="127.0.0.1:$admin_port"
NODE_ENV=production MALLOC_TRIM_THRESHOLD_=268435456 "${run_as[@]}" node "${node_flags[@]}" /"$work"/image/app/dist/cli.js serve \
  --listen "127.0.0.1:$ssh_port" >"$work/serve.log" 2>&1 &
pid=$!

healthcheck="$(sed -n 's/^  CMD \["node", "\/app\/dist\/cli.js", \(.*\)\]$/\1/p' "$repo/Dockerfile" | tr -d '",')"
[[ -n "$healthcheck" ]] || fail "no HEALTHCHECK CMD found in the Dockerfile"
read -r -a healthcheck_args <<<"$healthcheck"
ok=0
for _ in $(seq 1 50); do
  if node "$work/image/app/dist/cli.js" "${healthcheck_args[@]}" 2>/dev/null; then ok=1; break; fi
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log"; fail "the proxy exited"; }
  sleep 0.2
done
[[ $ok -eq 1 ]] || { cat "$work/serve.log"; fail "HEALTHCHECK never passed"; }
step "HEALTHCHECK passes"
ready="$(node -e "require('http').get('http://127.0.0.1:$admin_port/readyz',r=>{console.log(r.statusCode);r.resume()})")"
step "/readyz: $ready (503 expected with no sshd on 127.0.0.1:22, 200 with one)"
[[ "$ready" == "200" || "$ready" == "503" ]] || fail "/readyz answered $ready"
node -e "const s=require('net').connect($ssh_port,'127.0.0.1',()=>{s.destroy();process.exit(0)});s.on('error',()=>process.exit(1))" \
  || fail "SSH listener not accepting"
step "SSH listener accepts connections"

step "SIGTERM"
kill -TERM "$pid"
code=0; wait "$pid" || code=$?
pid=""
[[ $code -eq 0 ]] || { cat "$work/serve.log"; fail "exit code $code after SIGTERM"; }
grep -q '"event":"shutdown"' "$work/serve.log" || fail "no shutdown log line"
step "exited 0 after SIGTERM"
echo "OK"
