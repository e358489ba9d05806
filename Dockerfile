# syntax=docker/dockerfile:1
#
# The ha-operator image: the TypeScript compiled to dist/ and production
# dependencies only, on a distroless Node 24 base (no shell, no package
# manager), running as the non-root user 65532.
#
#   docker build -t REGISTRY/ha-operator:TAG .
#
# Pin the base images by digest (FROM image:tag@sha256:...) for reproducible builds.

# --- build: compile src/ to dist/ with the dev dependencies (TypeScript) ---
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- deps: the production dependencies alone ---
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

# --- runtime ---
FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production \
    NODE_OPTIONS=--enable-source-maps
# package.json carries "type": "module", which makes dist/*.js ES modules.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# 65532 is distroless's "nonroot"; numeric, so that Kubernetes can check
# runAsNonRoot without resolving a user name.
USER 65532:65532
EXPOSE 8080
# The base image's ENTRYPOINT is the node binary, so node itself is PID 1 (exec
# form, no shell in between). A PID 1 gets no default signal handling from the
# kernel, but src/main.ts installs its own SIGTERM and SIGINT handlers, which
# run the graceful shutdown (drain, release the Lease, exit) — so SIGTERM from
# the kubelet reaches it. Node starts no child processes, so there are no
# zombies to reap and no init (tini) is needed.
CMD ["dist/main.js"]
