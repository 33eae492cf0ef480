# The Gatehouse gateway image. Not built in this project's CI: no image registry
# is reachable from its machines (README, "Deploying"); test/unit/deploy checks
# what can be checked without building it.
#   docker build -t gatehouse:dev .
#   docker run --read-only --tmpfs /tmp -v ./config:/etc/gatehouse:ro gatehouse:dev
ARG NODE_VERSION=20.19
ARG GO_VERSION=1.26
ARG OPA_VERSION=v1.22.2

# OPA from Go modules, as scripts/tools.sh builds it: `policy.dir` is compiled with it at start-up and on reload.
FROM golang:${GO_VERSION}-bookworm AS opa
ARG OPA_VERSION
ENV CGO_ENABLED=0 GOBIN=/out
RUN go install github.com/open-policy-agent/opa@${OPA_VERSION}

# The TypeScript build, and the production dependencies (better-sqlite3 compiled for this Debian).
FROM node:${NODE_VERSION}-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npx tsc -p tsconfig.json && npm prune --omit=dev --ignore-scripts

# Runtime: no shell, no package manager, a non-root user; the root filesystem can be read-only
# (mount writable volumes for the audit log, recordings, TLS and /tmp, where policies compile).
FROM gcr.io/distroless/nodejs20-debian12:nonroot
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY bin/gatehouse.js ./bin/gatehouse.js
COPY policies/gatehouse ./policies/gatehouse
COPY --from=opa /out/opa ./.tools/opa
USER 65532:65532
# The Kubernetes API (TLS) and the metrics listener (metrics.address).
EXPOSE 8443 9464
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/gatehouse.js"]
CMD ["serve", "--config", "/etc/gatehouse/gatehouse.yaml"]
