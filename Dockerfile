# syntax=docker/dockerfile:1
# One image for both pulltrace binaries:
#   node /app/dist/webhook/main.js      the mutating admission webhook (Deployment)
#   node /app/dist/node-agent/main.js   the node agent (DaemonSet); `... pulls` to debug a node
# The chart sets the command; run without one, the image prints how to use it.
#
# Stage 1 compiles the TypeScript with the dev dependencies; stage 2 holds only the compiled
# dist/, the production node_modules and package.json, owned by root and run as uid 65532.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# The lock file first, so the dependency layer is reused while only sources change.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs scripts/build.mjs
COPY common common
COPY cli cli
COPY webhook webhook
COPY node-agent node-agent
# scripts/build.mjs: tsc -p tsconfig.build.json (tests left out) into dist/, plus the protos.
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; install scripts are not needed by any of them at run time.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
  && npm cache clean --force \
  && rm -rf /root/.npm /tmp/*
COPY --from=build /src/dist ./dist
# Not root, and a numeric uid so the kubelet can check runAsNonRoot. The files stay root-owned
# and read-only to this user: the chart runs the containers with a read-only root filesystem.
USER 65532:65532
LABEL org.opencontainers.image.title="pulltrace" \
  org.opencontainers.image.description="Live container-image pull progress on Kubernetes, through pod labels, annotations, a condition and events." \
  org.opencontainers.image.licenses="Apache-2.0" \
  org.opencontainers.image.source="https://github.com/pulltrace/pulltrace"
ENTRYPOINT []
CMD ["node", "-e", "console.log('pulltrace image: run one of\\n  node /app/dist/webhook/main.js --help\\n  node /app/dist/node-agent/main.js --help\\n  node /app/dist/node-agent/main.js pulls --help')"]
