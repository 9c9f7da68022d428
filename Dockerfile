# One image for every Tern node, embedded or cluster: what a node runs is chosen at run time by
# SERVICES, TRANSPORTER and DB_URI (see k8s/). TypeScript runs as is (Node 24 strips the types);
# the one build is the web console's, in its own stage.
#
#   docker build -t tern:0.1.0 .
#   docker run -p 3000:3000 -v tern-data:/data tern:0.1.0            # embedded mode, SQLite in /data

# --- dependencies: production only, sqlite3 compiled here when no prebuilt binary fits ---------
FROM node:24-bookworm-slim AS deps
RUN apt-get update \
	&& apt-get install -y --no-install-recommends python3 make g++ \
	&& rm -rf /var/lib/apt/lists/*
# node-gyp takes the headers of the image's own Node instead of downloading them.
ENV npm_config_nodedir=/usr/local
WORKDIR /app
COPY package.json package-lock.json ./
# --omit=dev also leaves out the `node` devDependency: the base image already is Node 24.
RUN npm ci --omit=dev --no-audit --no-fund

# --- the web console: built with the dev dependencies (Vite, Vue, Vant), only public/ is kept ----
FROM node:24-bookworm-slim AS console
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY web ./web
COPY lib/contracts ./lib/contracts
COPY lib/contracts.ts ./lib/contracts.ts
RUN node web/build.ts

# --- runtime -----------------------------------------------------------------------------------
FROM node:24-bookworm-slim
# `docker build --build-arg TERN_COMMIT=$(git rev-parse HEAD) .`: what /api/version reports.
ARG TERN_COMMIT=""
ENV TERN_COMMIT=$TERN_COMMIT \
	NODE_ENV=production \
	TERN_DATA_DIR=/data \
	HEALTH_PORT=9090
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# Owned by root and read-only to the node user: the code cannot be changed at run time.
COPY . .
COPY --from=console /app/public ./public
# Embedded mode's SQLite file and generated secret; cluster mode writes nothing to disk.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
	CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.HEALTH_PORT}/healthz/ready`).then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node is PID 1 and handles SIGTERM itself (tern.ts drains, then exits).
CMD ["node", "tern.ts"]
