# syntax=docker/dockerfile:1
# ssh-banner-proxy: multi-stage build, runtime image without dev dependencies.
#
#   docker build -t ssh-banner-proxy --build-arg SOURCE_URL="$(git remote get-url origin)" --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run --init -p 2222:2222 -p 9100:9100 \
#     -v $PWD/proxy.yaml:/etc/ssh-banner-proxy/config.yaml:ro ssh-banner-proxy
#
# Signals: tini is PID 1 (ENTRYPOINT), so SIGTERM reaches node and the proxy drains
# (timeouts.drain) before exiting 0; `docker run --init` is then unnecessary.
# scripts/docker-build-check.sh performs these same steps without a Docker engine.

# Node 24 (LTS), pinned by digest so a rebuild gets the same base. Refresh deliberately:
#   docker buildx imagetools inspect node:24-slim   (then update the digest and rebuild)
ARG NODE_IMAGE=node:24-slim@sha256:a9f5f7c91a432850b2a8a7797adf5eadb6c733ceed61167806cee7ea7fbc29df

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
# OCI labels. VERSION is the package's (a test keeps them equal); SOURCE_URL names where
# this build's source lives: pass --build-arg SOURCE_URL=$(git remote get-url origin).
ARG VERSION=0.1.0
ARG SOURCE_URL=https://www.npmjs.com/package/ssh-banner-proxy
ARG REVISION=unknown
LABEL org.opencontainers.image.title="ssh-banner-proxy" \
      org.opencontainers.image.description="Layer-4 SSH proxy that verifies each backend's identification banner before splicing the client through" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.documentation="https://unpkg.com/ssh-banner-proxy@${VERSION}/docs/deploy.md"
# iproute2 and iptables: `transparent setup` (an init container) and the start-up route check of
# pools[].source: transparent (docs/identity.md).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini iproute2 iptables \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
# glibc keeps freed 64 KiB socket read buffers mapped instead of trimming them back to the
# kernel and faulting them in again on the next read: client→server bulk +20–30 %, for
# ~30 MB more resident after a transfer (docs/deploy.md, docs/benchmarks.md).
ENV MALLOC_TRIM_THRESHOLD_=268435456
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./package.json
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY --chown=root:root config ./config
COPY --chown=root:root config/container.yaml /etc/ssh-banner-proxy/config.yaml
# The "node" user (uid 1000) of the official image; files stay root-owned and read-only.
USER 1000:1000
# 2222: SSH listener; 9100: admin (/metrics, /healthz, /readyz).
EXPOSE 2222 9100
# /healthz on the admin address serve runs with: the config and --admin come from the same
# SSH_BANNER_PROXY_CONFIG / SSH_BANNER_PROXY_ADMIN variables (set them, not CMD flags, to
# move either), so the check follows a changed admin bind instead of a port written here.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "/app/dist/cli.js", "healthcheck", "--timeout", "2500ms"]
# --max-semi-space-size=16: Node 24's V8 sizes the young generation from the machine's
# memory (up to 64 MiB per semi-space here); every worker grew it under a burst of
# connections and kept it, 6 KB of RSS per held session in the bench. 16 MiB is Node 20's
# default; connection rate and bulk were unchanged (docs/benchmarks.md). Workers inherit it.
ENTRYPOINT ["/usr/bin/tini", "--", "node", "--max-semi-space-size=16", "/app/dist/cli.js"]
ENV SSH_BANNER_PROXY_CONFIG=/etc/ssh-banner-proxy/config.yaml
CMD ["serve"]
