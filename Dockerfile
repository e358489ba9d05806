# syntax=docker/dockerfile:1
#
# The ha-operator image: ONE file, dist/main.mjs — src/main.ts and its
# dependencies bundled by esbuild (hack/build.ts) — on a distroless Node 24
# base (no shell, no package manager), running as the non-root user 65532.
# No node_modules: the bundle holds everything it loads.
#
#   docker build -t REGISTRY/ha-operator:TAG .
#
# Pin the base images by digest (FROM image:tag@sha256:...) for reproducible builds.

# --- build: npm ci (esbuild is a dev dependency), then bundle ---
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY hack/build.ts ./hack/
COPY src ./src
RUN npm run build

# --- runtime ---
FROM gcr.io/distroless/nodejs24-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
# The source map ships beside the bundle but is not loaded: stack traces name
# the functions either way (the bundle's identifiers are not minified), and
# --enable-source-maps costs about 18 MiB of resident memory
# (docs/BENCHMARKS.md). Set NODE_OPTIONS=--enable-source-maps in the
# Deployment to have src/ file and line numbers in stack traces.
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
# zombies to reap and no init (tini) is needed. The flag caps V8's young
# generation (hack/build.ts, OPERATOR_NODE_FLAGS, says why; a test keeps the two equal).
CMD ["--max-semi-space-size=16", "dist/main.mjs"]
