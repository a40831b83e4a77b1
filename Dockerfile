# tabby's image: `tabby serve` on Node 20, production dependencies only, as a non-root user, nothing
# written outside /tmp (runs with readOnlyRootFilesystem). Build: `docker build -t tabby:0.1.0 .`
# test/e2e/image.test.ts makes this file set the way these stages do (it reads this file) and runs it.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# Compile dist/ (typescript and the type packages are dev dependencies: only this stage has them).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY src ./src
COPY loadtest ./loadtest
RUN npm run build

# The production dependencies, from the committed lockfile.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
# src/cli/node-flags.ts (SERVE_NODE_OPTIONS): a 2 MB young-generation semi-space saves ~90 MB of RSS.
ENV NODE_OPTIONS=--max-semi-space-size=2
# src/cli/node-flags.ts (SERVE_ENV): two malloc arenas instead of up to 8 per core save 40–75 MiB of RSS.
ENV MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
# 65532: the conventional "nonroot" uid; no home directory, no shell needed, owns nothing in /app.
USER 65532:65532
# WebSocket (agents), health (/livez, /readyz, /status), metrics (/metrics).
EXPOSE 5473 9098 9093
ENTRYPOINT ["node", "bin/tabby.js"]
CMD ["serve"]
