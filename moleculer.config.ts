/**
 * Tern's configuration: the one place that reads the environment.
 *
 * Embedded mode (the default): every service in one process, no transporter, SQLite in
 * TERN_DATA_DIR. Cluster mode: TRANSPORTER=nats://…, DB_URI=mysql://…, SERVICES=gateway,…
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { derivedDataKey, newDataKey, parseDataKeys, type DataKey } from "./lib/keyring.ts";
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import type { BrokerOptions, LogLevels } from "moleculer";
import { PromptDiscoverer } from "./lib/discoverer.ts";
import { TernPrometheusReporter } from "./lib/metrics/reporter.ts";
import { loggerOptions, type LogFormat } from "./lib/log-format.ts";
import { AccessMiddleware } from "./lib/access/middleware.ts";
import { AuditMiddleware } from "./lib/audit/middleware.ts";
import { durationSeconds } from "./lib/duration.ts";
import { parseOrigins } from "./lib/http/cors.ts";
import { buildCommit } from "./lib/version.ts";

export const ALL_SERVICES = [
	"api",
	"auth",
	"terminals",
	"cache",
	"dispatcher",
	"gateway",
	"scheduler",
	"scripts",
	"monitor",
	"alert",
	"audit"
] as const;
export type ServiceName = (typeof ALL_SERVICES)[number];

export interface TernConfig {
	/** HTTP port of the api (and of the gateway when it runs beside it). @defaultValue 3000 */
	port: number;
	/** Moleculer transporter URL; null runs embedded, in one process. @defaultValue null */
	transporter: string | null;
	/** Services this node runs. @defaultValue all */
	services: ServiceName[];
	/** Moleculer namespace: nodes only see nodes of the same namespace. @defaultValue "tern" */
	namespace: string;
	/** Where embedded mode keeps its database and generated secret. @defaultValue "./data" */
	dataDir: string;
	/** @defaultValue sqlite://$TERN_DATA_DIR/tern.sqlite */
	dbUri: string;
	/**
	 * HS256 secret that signs user and terminal tokens (`JWT_SECRET`, at least 32 bytes); embedded
	 * mode generates one into the data dir.
	 */
	jwtSecret: string;
	/**
	 * Earlier secrets (`JWT_PREVIOUS_SECRETS`, comma-separated): tokens they signed still verify, so
	 * the secret rotates without logging everyone out. Tokens name their key by a `kid` derived from
	 * the secret. @defaultValue []
	 */
	jwtPreviousSecrets: string[];
	/** Lifetime of a terminal credential, s (`TERN_TERMINAL_TOKEN_TTL`: 3600, 90d, …). @defaultValue 365 days */
	terminalTokenTtl: number;
	/** Password of the `admin` user created on first start; generated and printed when unset. */
	adminPassword: string | null;
	logLevel: LogLevels;
	/** Node ID; Moleculer derives one from the host name and PID when unset. */
	nodeID: string | null;
	/** Port of /healthz/live and /healthz/ready; null serves none. @defaultValue null */
	healthPort: number | null;
	/**
	 * REST requests per second per client address the api accepts, before authentication
	 * (`TERN_RATE_LIMIT`, also `rateLimit` of `PUT /api/system/config`); 0 turns the limit off.
	 * High, because behind an ingress or a NAT many callers share one address. @defaultValue 2000
	 */
	rateLimit: number;
	/** REST requests per second per token (user, API token or terminal), after authentication; 0: off. @defaultValue 200 */
	tokenRateLimit: number;
	/** Socket messages per second per terminal session (socket.io and raw WebSocket); 0: off. @defaultValue 200 */
	socketRateLimit: number;
	/**
	 * The gateway's handshake gate and partition handling: handshakes verified at once
	 * (`TERN_GATEWAY_ADMIT_CONCURRENCY`, 64) and let in per second (`TERN_GATEWAY_ADMIT_RATE`, 1000),
	 * 0 for no limit; sessions kept once cut off from NATS (`TERN_GATEWAY_PARTITION_GRACE_MS`, 5000)
	 * and the spread of reconnect delays (`TERN_GATEWAY_RECONNECT_SPREAD_MS`, 5000).
	 */
	gatewayFaults: { admitConcurrency: number; admitRate: number; partitionGrace: number; reconnectSpread: number };
	/**
	 * HTTPS and WSS on the api's (and the gateway's own) port: the PEM certificate chain and key
	 * of `TLS_CERT` and `TLS_KEY` (file paths); null serves plain HTTP. @defaultValue null
	 */
	tls: { certFile: string; keyFile: string; cert: string; key: string } | null;
	/** `TERN_CORS_ORIGINS`: the exact origins browsers may call Tern from; empty: none (CORS closed). @defaultValue [] */
	corsOrigins: string[];
	/**
	 * Degraded mode (`TERN_DB_DEADLINE_MS`): a dispatcher statement the database has not answered
	 * within this long counts as the database being away; 0 waits for ever. @defaultValue 5000
	 */
	dbDeadlineMs: number;
	/** The commit Tern was built from (`TERN_COMMIT`, else the checkout's `.git`); null when unknown. */
	commit: string | null;
	/** Where dispatchers journal changes while their database is away (`TERN_JOURNAL_DIR`), one folder per node. @defaultValue $TERN_DATA_DIR/journal */
	journalDir: string;
	/**
	 * Largest result `output` a terminal may send, bytes of JSON (`TERN_MAX_RESULT_BYTES`); a larger
	 * one fails its task with RESULT_TOO_LARGE. The gateway and the dispatcher both enforce it.
	 * @defaultValue 1 MiB
	 */
	maxResultBytes: number;
	/**
	 * Moleculer's metrics and Tern's `tern_*` series, served as Prometheus text at `GET /metrics`
	 * (`TERN_METRICS=off` turns them off). @defaultValue true
	 */
	metrics: boolean;
	/** `LOG_FORMAT`: `text` (one readable line) or `json` (one JSON object a line, ids as fields). @defaultValue "text" */
	logFormat: LogFormat;
	/**
	 * Keys that seal secrets at rest (task secrets, job secrets, sensitive scripts, alert channel
	 * credentials), the active one first (`TERN_DATA_KEYS="k2:<base64 32 bytes>,k1:<…>"`). Embedded
	 * mode without it generates one key once into `$TERN_DATA_DIR/data-keys`; cluster mode without
	 * it derives one from JWT_SECRET (HKDF), with a warning. See docs/security/encryption.md.
	 */
	dataKeys: DataKey[];
	/** Where `dataKeys` came from: the environment, the data dir's file, or derived from JWT_SECRET. */
	dataKeysFrom: "env" | "file" | "jwt";
}

/** `all` (or unset) runs every service; `none` runs none (a REPL-only node joining a cluster). */
function parseServices(value: string | undefined): ServiceName[] {
	if (!value || value.trim() === "" || value.trim() === "all") return [...ALL_SERVICES];
	if (value.trim() === "none") return [];
	const names = value
		.split(",")
		.map(s => s.trim())
		.filter(Boolean);
	for (const name of names) {
		if (!(ALL_SERVICES as readonly string[]).includes(name))
			throw new TypeError(`SERVICES names unknown service '${name}'; known: ${ALL_SERVICES.join(", ")}`);
	}
	return names as ServiceName[];
}

/** The shortest JWT secret Tern accepts, bytes: HS256's key is 256 bits. */
export const MIN_SECRET_BYTES = 32;

/** Throws unless `secret` is long enough and not a placeholder left from an example. */
function checkSecret(secret: string, name: string): string {
	if (Buffer.byteLength(secret, "utf8") < MIN_SECRET_BYTES)
		throw new TypeError(
			`${name} is shorter than ${MIN_SECRET_BYTES} bytes: use a random one, e.g. \`openssl rand -base64 48\``
		);
	if (/replace-me|changeme/i.test(secret))
		throw new TypeError(`${name} is a placeholder ('REPLACE-ME'/'changeme'): set a random secret of your own`);
	return secret;
}

/** The secret from JWT_SECRET, else one generated once into the data dir and reused. */
function jwtSecretFor(env: NodeJS.ProcessEnv, dataDir: string, transporter: string | null): string {
	if (env.JWT_SECRET) return checkSecret(env.JWT_SECRET, "JWT_SECRET");
	if (transporter) throw new TypeError("JWT_SECRET must be set in cluster mode: every node signs and checks tokens");
	const file = join(dataDir, "jwt-secret");
	if (existsSync(file)) return readFileSync(file, "utf8").trim();
	mkdirSync(dataDir, { recursive: true, mode: 0o700 });
	const secret = randomBytes(32).toString("base64url");
	writeFileSync(file, secret + "\n", { mode: 0o600 });
	return secret;
}

/** JWT_PREVIOUS_SECRETS: comma-separated earlier secrets, each checked as JWT_SECRET is. */
function previousSecretsOf(value: string | undefined): string[] {
	return (value ?? "")
		.split(",")
		.map(s => s.trim())
		.filter(Boolean)
		.map((secret, i) => checkSecret(secret, `JWT_PREVIOUS_SECRETS entry ${i + 1}`));
}

/** A whole number of something per second from `env[name]`, `fallback` when unset; 0 turns it off. */
function perSecond(env: NodeJS.ProcessEnv, name: string, fallback: number, what: string): number {
	const text = env[name]?.trim();
	const value = text ? Number(text) : fallback;
	if (!Number.isInteger(value) || value < 0)
		throw new TypeError(`${name} '${env[name]}' is not a number of ${what} per second (0 for no limit)`);
	return value;
}

function count(env: NodeJS.ProcessEnv, name: string, fallback: number, what: string): number {
	const text = env[name]?.trim();
	const value = text ? Number(text) : fallback;
	if (!Number.isInteger(value) || value < 0) throw new TypeError(`${name} '${env[name]}' is not a number of ${what}`);
	return value;
}

function milliseconds(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
	const text = env[name]?.trim();
	const value = text ? Number(text) : fallback;
	if (!Number.isInteger(value) || value < 0) throw new TypeError(`${name} '${env[name]}' is not a number of milliseconds`);
	return value;
}

/** TLS_CERT and TLS_KEY, both or neither: the files' PEM text, read now so that a bad path stops the start. */
function tlsFrom(env: NodeJS.ProcessEnv): TernConfig["tls"] {
	const certFile = env.TLS_CERT?.trim() || null;
	const keyFile = env.TLS_KEY?.trim() || null;
	if (!certFile && !keyFile) return null;
	if (!certFile || !keyFile)
		throw new TypeError(`TLS needs both TLS_CERT and TLS_KEY (PEM files); only ${certFile ? "TLS_CERT" : "TLS_KEY"} is set`);
	const read = (name: string, file: string): string => {
		let text: string;
		try {
			text = readFileSync(file, "utf8");
		} catch (err) {
			throw new TypeError(`${name} '${file}' cannot be read: ${(err as Error).message}`);
		}
		if (!text.includes("-----BEGIN ")) throw new TypeError(`${name} '${file}' is not a PEM file`);
		return text;
	};
	return { certFile, keyFile, cert: read("TLS_CERT", certFile), key: read("TLS_KEY", keyFile) };
}

/**
 * The data keys from TERN_DATA_KEYS; else, embedded, those of the data dir's `data-keys` file (one
 * key generated into it on first start, mode 0600); else, in a cluster, one derived from JWT_SECRET.
 */
function dataKeysFor(
	env: NodeJS.ProcessEnv,
	dataDir: string,
	transporter: string | null,
	jwtSecret: string
): Pick<TernConfig, "dataKeys" | "dataKeysFrom"> {
	if (env.TERN_DATA_KEYS?.trim()) return { dataKeys: parseDataKeys(env.TERN_DATA_KEYS), dataKeysFrom: "env" };
	if (transporter) return { dataKeys: [{ id: "jwt", key: derivedDataKey(jwtSecret, "tern data key") }], dataKeysFrom: "jwt" };
	const file = join(dataDir, "data-keys");
	if (!existsSync(file)) {
		mkdirSync(dataDir, { recursive: true, mode: 0o700 });
		writeFileSync(file, newDataKey("k1") + "\n", { mode: 0o600, flag: "wx" });
	}
	return { dataKeys: parseDataKeys(readFileSync(file, "utf8"), file), dataKeysFrom: "file" };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): TernConfig {
	const transporter = env.TRANSPORTER && env.TRANSPORTER !== "none" ? env.TRANSPORTER : null;
	const dataDir = resolve(env.TERN_DATA_DIR ?? "./data");
	const port = Number(env.PORT ?? 3000);
	if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`PORT '${env.PORT}' is not a port`);
	const rateLimit = perSecond(env, "TERN_RATE_LIMIT", 2000, "requests");
	const maxResultBytes = env.TERN_MAX_RESULT_BYTES?.trim() ? Number(env.TERN_MAX_RESULT_BYTES) : 1024 * 1024;
	if (!Number.isInteger(maxResultBytes) || maxResultBytes < 1)
		throw new TypeError(`TERN_MAX_RESULT_BYTES '${env.TERN_MAX_RESULT_BYTES}' is not a number of bytes`);
	const metricsFlag = (env.TERN_METRICS ?? "on").trim().toLowerCase();
	if (!["on", "off", "true", "false", "1", "0", ""].includes(metricsFlag))
		throw new TypeError(`TERN_METRICS '${env.TERN_METRICS}' is neither on nor off`);
	const logFormat = (env.LOG_FORMAT ?? "text").trim().toLowerCase() || "text";
	if (logFormat !== "text" && logFormat !== "json")
		throw new TypeError(`LOG_FORMAT '${env.LOG_FORMAT}' is neither text nor json`);
	const jwtSecret = jwtSecretFor(env, dataDir, transporter);
	return {
		port,
		maxResultBytes,
		metrics: !["off", "false", "0"].includes(metricsFlag),
		logFormat,
		transporter,
		services: parseServices(env.SERVICES),
		namespace: env.NAMESPACE ?? "tern",
		dataDir,
		dbUri: env.DB_URI ?? `sqlite://${join(dataDir, "tern.sqlite")}`,
		jwtSecret,
		jwtPreviousSecrets: previousSecretsOf(env.JWT_PREVIOUS_SECRETS),
		terminalTokenTtl: env.TERN_TERMINAL_TOKEN_TTL?.trim()
			? durationSeconds(env.TERN_TERMINAL_TOKEN_TTL, "TERN_TERMINAL_TOKEN_TTL")
			: 365 * 86_400,
		...dataKeysFor(env, dataDir, transporter, jwtSecret),
		adminPassword: env.TERN_ADMIN_PASSWORD ?? null,
		logLevel: (env.LOGLEVEL as LogLevels | undefined) ?? "info",
		nodeID: env.NODE_ID ?? null,
		healthPort: env.HEALTH_PORT ? Number(env.HEALTH_PORT) : null,
		rateLimit,
		tokenRateLimit: perSecond(env, "TERN_TOKEN_RATE_LIMIT", 200, "requests"),
		socketRateLimit: perSecond(env, "TERN_SOCKET_RATE_LIMIT", 200, "messages"),
		gatewayFaults: {
			admitConcurrency: count(env, "TERN_GATEWAY_ADMIT_CONCURRENCY", 64, "handshakes at once (0 for no limit)"),
			admitRate: perSecond(env, "TERN_GATEWAY_ADMIT_RATE", 1000, "handshakes"),
			partitionGrace: milliseconds(env, "TERN_GATEWAY_PARTITION_GRACE_MS", 5000),
			reconnectSpread: milliseconds(env, "TERN_GATEWAY_RECONNECT_SPREAD_MS", 5000)
		},
		tls: tlsFrom(env),
		corsOrigins: parseOrigins(env.TERN_CORS_ORIGINS),
		dbDeadlineMs: milliseconds(env, "TERN_DB_DEADLINE_MS", 5000),
		journalDir: resolve(env.TERN_JOURNAL_DIR ?? join(dataDir, "journal")),
		commit: buildCommit(env.TERN_COMMIT)
	};
}

/** The configuration as `GET /api/system/config` shows it: every secret as "***". */
export function describeConfig(config: TernConfig): Record<string, unknown> {
	return {
		...config,
		jwtSecret: "***",
		jwtPreviousSecrets: config.jwtPreviousSecrets.map(() => "***"),
		// The files, never the key itself.
		tls: config.tls ? { certFile: config.tls.certFile, keyFile: config.tls.keyFile } : null,
		dataKeys: "***",
		adminPassword: config.adminPassword === null ? null : "***",
		// mysql://user:password@host/db → mysql://user:***@host/db
		dbUri: config.dbUri.replace(/^([a-z]+:\/\/[^:/@]+):[^@]*@/, "$1:***@"),
		transporter: config.transporter?.replace(/^([a-z]+:\/\/[^:/@]+):[^@]*@/, "$1:***@") ?? null
	};
}

/**
 * The transporter: NATS pings its server every 2 s and counts it gone after 3 unanswered, so a
 * connection that hangs (a partition that drops packets rather than closing) is noticed within
 * ~6 s, and the node's gateway and dispatcher stop taking work (lib/transport-watch.ts), rather
 * than after NATS's default of 4 minutes.
 */
function transporterOptions(url: string | null): BrokerOptions["transporter"] {
	if (!url) return undefined;
	if (!url.startsWith("nats://")) return url as BrokerOptions["transporter"];
	return { type: "NATS", options: { url, pingInterval: 2000, maxPingOut: 3 } } as BrokerOptions["transporter"];
}

/** Broker options for a node of this configuration. */
export function brokerOptions(config: TernConfig): BrokerOptions {
	return {
		namespace: config.namespace,
		...(config.nodeID ? { nodeID: config.nodeID } : {}),
		transporter: transporterOptions(config.transporter),
		logger: loggerOptions(config.logFormat, config.logLevel),
		// Moleculer's own validator (fastest-validator) checks every action's params.
		validator: true,
		// Who may call (declared per action), then what changed, written to the audit log.
		middlewares: [AccessMiddleware, AuditMiddleware],
		// Notice a dead node within ~2.5 s (heartbeats every 0.5–1.5 s; see lib/discoverer.ts), so that
		// its terminals, deadlines and jobs move to the others within 3 s.
		heartbeatInterval: 1,
		heartbeatTimeout: 3,
		registry: { discoverer: new PromptDiscoverer({ failAfterMs: 2200, checkEveryMs: 250 }) },
		requestTimeout: 15_000,
		// Services wait for their dependencies (the dispatcher for the cache): poll often.
		dependencyInterval: 50,
		// Tell the cluster at once when a service of this node starts (Moleculer waits 1 s by default):
		// a gateway that started after its dependencies takes terminals at once, and the dispatchers
		// must know it to push to them. (The option is missing from Moleculer's typings.)
		transit: { serviceChangedDebounceTime: 0 } as BrokerOptions["transit"],
		retryPolicy: { enabled: false },
		circuitBreaker: { enabled: Boolean(config.transporter), threshold: 0.5, minRequestCount: 20, windowTime: 60 },
		tracking: { enabled: true, shutdownTimeout: 10_000 },
		// Each node serves its own metrics (GET /metrics on the api, or the health port): Prometheus
		// scrapes every pod, so there is no aggregation hop and a node that is down is a failed scrape.
		metrics: config.metrics
			? {
					enabled: true,
					// An instance (Moleculer takes one, its typings only names); namespace and nodeID labels.
					reporter: [new TernPrometheusReporter() as unknown as "Prometheus"],
					// Histograms as Prometheus wants them, buckets only: Moleculer's per-request
					// quantiles cost a sliding-window reservoir update on every call, and Prometheus
					// computes quantiles from the buckets (histogram_quantile) anyway.
					defaultQuantiles: null as unknown as number[]
				}
			: { enabled: false }
	};
}

export default brokerOptions;
