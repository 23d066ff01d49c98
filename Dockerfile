# syntax=docker/dockerfile:1
# The Tollgate image: one build for every command (tollgate agent | operator |
# init | validate | check | test), entrypoint `tollgate`. No HEALTHCHECK: on
# Kubernetes the kubelet probes the agent (:15020) and the operator (:8080).
# Release builds pin the base image by digest as well (--build-arg NODE_IMAGE=node:...@sha256:...).
# test/chart/dockerfile.test.ts lints this file (the hadolint rules docs/install.md lists).
ARG NODE_IMAGE=node:24.21.0-trixie-slim

# Compiles the TypeScript sources to dist/ with every dependency installed.
# --ignore-scripts: the devDependency `node` (the Node.js pinned for
# development) is not downloaded; the base image's Node.js 24 builds.
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY cli/ cli/
COPY policy/ policy/
COPY agent/ agent/
COPY operator/ operator/
COPY proto/ proto/
COPY telemetry/ telemetry/
RUN npm run build

# The production dependencies only.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force

FROM ${NODE_IMAGE}
LABEL org.opencontainers.image.title="tollgate" \
  org.opencontainers.image.description="Kubernetes API-policy sidecar, operator and CLI" \
  org.opencontainers.image.licenses="Apache-2.0"
# iptables: `tollgate init` installs the pod's traffic-capture rules (the init
# container runs it as root with NET_ADMIN). npm and corepack are not needed to run.
RUN apt-get update \
  && apt-get install -y --no-install-recommends iptables \
  && rm -rf /var/lib/apt/lists/* \
  && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
    /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
  && groupadd --system --gid 1337 tollgate \
  && useradd --system --uid 1337 --gid 1337 --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin tollgate
WORKDIR /app
# Owned by root and read-only to the runtime user. bin/tollgate runs the PATH's
# Node.js (the base image's) since node_modules/node is a devDependency.
COPY --from=deps /app/node_modules/ node_modules/
COPY --from=build /src/dist/ dist/
COPY package.json ./
COPY bin/ bin/
COPY crds/ crds/
COPY proto/ proto/
USER 1337:1337
ENTRYPOINT ["/app/bin/tollgate"]
CMD ["--help"]
