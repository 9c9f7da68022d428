/**
 * The agent's configuration: command-line options, then `TERN_*` environment variables, then
 * a JSON config file (`--config`), then defaults — the first that gives a value wins. Every
 * value is checked here, at start-up, so a typo stops the agent with a message naming the
 * option rather than misbehaving later.
 */
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { LOG_LEVELS, type LogLevel } from "./log.ts";

export type TransportMode = "auto" | "socket" | "pull";

/** Limits applied to every process a task starts, where the OS allows (see runners/base.ts). */
export interface ResourceLimits {
	/** Address space, MiB (`RLIMIT_AS`). */
	memoryMb?: number;
	/** CPU time, seconds (`RLIMIT_CPU`). */
	cpuSeconds?: number;
	/** Open files (`RLIMIT_NOFILE`). */
	openFiles?: number;
	/** Processes of the agent's user (`RLIMIT_NPROC`: counted per user, not per task). */
	processes?: number;
	/** Largest file a task may write, MiB (`RLIMIT_FSIZE`). */
	fileSizeMb?: number;
}

export interface AgentConfig {
	/** Tern's base URL, for REST (pull, results, scripts) and, unless `socketUrl` says otherwise, the socket. */
	url: string;
	/** Where the socket.io connection goes; `url` unless given. */
	/** Where the socket connects: one URL, or several gateways separated by commas, tried in turn. */
	socketUrl: string;
	token: string;
	/**
	 * Where the token came from. `argv` (`--token`) is visible to every user of the machine in
	 * the process list (and in npm's banner): the CLI warns about it.
	 */
	tokenFrom: "argv" | "env" | "file" | "config";
	/** PEM certificates of a CA to trust besides the system's (`--ca`, TERN_CA): a self-signed Tern. */
	ca: string | null;
	/** From the token's subject unless given (then it must match). */
	terminalId: string;
	concurrency: number;
	/** Sent in the handshake; Tern's registered labels are what routing uses. */
	labels: Record<string, string>;
	/** Runners to enable; null: every runner that is available here. */
	runners: string[] | null;
	/** argv[0] values the command runner may start; `*` any. Empty: none. */
	allowCommands: string[];
	/** Hosts the http runner may call (`host`, `host:port`, `*.domain`, `*`). Empty: none. */
	allowHosts: string[];
	/** Let the http runner reach link-local and cloud-metadata addresses. */
	allowLinkLocal: boolean;
	transport: TransportMode;
	dataDir: string;
	heartbeatMs: number;
	reconnectInitialMs: number;
	reconnectMaxMs: number;
	/** Consecutive failed socket connects before HTTP pull takes over (transport auto). */
	fallbackAfter: number;
	pullIntervalMs: number;
	connectTimeoutMs: number;
	/** Between SIGTERM and SIGKILL of a task's process group. */
	killGraceMs: number;
	/** Bytes of stdout (and of stderr) kept in a result: the last ones. */
	outputLimit: number;
	/** Bytes of live output streamed to Tern per task. */
	logLimit: number;
	/** Graceful shutdown: how long running tasks may take to finish before they are killed. */
	drainTimeoutMs: number;
	limits: ResourceLimits;
	logLevel: LogLevel;
}

export class ConfigError extends Error {}

/** Every option: its CLI name, environment variable and kind. Config-file keys are the camelCase names. */
const OPTIONS = {
	url: { env: "TERN_URL", kind: "string", help: "Tern's base URL, e.g. https://tern.example.com" },
	token: {
		env: "TERN_TOKEN",
		kind: "string",
		help: "the terminal's token (POST /api/terminals answers it); prefer TERN_TOKEN or --token-file: --token shows in ps"
	},
	"token-file": { env: "TERN_TOKEN_FILE", kind: "string", help: "read the token from this file" },
	ca: { env: "TERN_CA", kind: "string", help: "a PEM file of the CA to trust for https:// and wss:// (a self-signed Tern)" },
	"terminal-id": { env: "TERN_TERMINAL_ID", kind: "string", help: "the terminal id (default: the token's subject)" },
	config: { env: "TERN_AGENT_CONFIG", kind: "string", help: "a JSON file with any of these options (camelCase keys)" },
	"allow-commands": { env: "TERN_ALLOW_COMMANDS", kind: "list", help: "programs the command runner may start ('*': any)" },
	"allow-hosts": {
		env: "TERN_ALLOW_HOSTS",
		kind: "list",
		help: "hosts the http runner may call: host, host:port, *.domain, '*'"
	},
	"allow-link-local": {
		env: "TERN_ALLOW_LINK_LOCAL",
		kind: "boolean",
		help: "let http tasks reach link-local/metadata addresses"
	},
	runners: { env: "TERN_RUNNERS", kind: "list", help: "runners to enable (default: every available one)" },
	concurrency: { env: "TERN_CONCURRENCY", kind: "integer", help: "tasks run at once (default 4)" },
	labels: { env: "TERN_LABELS", kind: "list", help: "labels sent in the handshake, k=v,k2=v2" },
	transport: { env: "TERN_TRANSPORT", kind: "string", help: "auto (socket, HTTP pull when it cannot connect), socket or pull" },
	"socket-url": {
		env: "TERN_SOCKET_URL",
		kind: "string",
		help: "where the socket connects (default: --url); several gateways separated by commas"
	},
	"data-dir": {
		env: "TERN_AGENT_DIR",
		kind: "string",
		help: "ledger, held results, script cache (default ~/.tern-agent/<id>)"
	},
	heartbeat: { env: "TERN_HEARTBEAT", kind: "seconds", help: "heartbeat interval, s (default 30)" },
	"reconnect-initial": { env: "TERN_RECONNECT_INITIAL", kind: "seconds", help: "first reconnect delay, s (default 0.5)" },
	"reconnect-max": { env: "TERN_RECONNECT_MAX", kind: "seconds", help: "longest reconnect delay, s (default 30)" },
	"fallback-after": {
		env: "TERN_FALLBACK_AFTER",
		kind: "integer",
		help: "failed socket connects before HTTP pull (default 3)"
	},
	"pull-interval": { env: "TERN_PULL_INTERVAL", kind: "seconds", help: "HTTP pull interval, s (default 2)" },
	"connect-timeout": { env: "TERN_CONNECT_TIMEOUT", kind: "seconds", help: "socket connect timeout, s (default 10)" },
	"kill-grace": { env: "TERN_KILL_GRACE", kind: "seconds", help: "SIGTERM to SIGKILL, s (default 5)" },
	"output-limit": {
		env: "TERN_OUTPUT_LIMIT",
		kind: "integer",
		help: "bytes of stdout/stderr kept in a result (default 65536)"
	},
	"log-limit": { env: "TERN_LOG_LIMIT", kind: "integer", help: "bytes of live output streamed per task (default 1 MiB)" },
	"drain-timeout": { env: "TERN_DRAIN_TIMEOUT", kind: "seconds", help: "shutdown: wait for running tasks, s (default 30)" },
	"limit-memory": { env: "TERN_LIMIT_MEMORY", kind: "integer", help: "address-space limit per task process, MiB" },
	"limit-cpu": { env: "TERN_LIMIT_CPU", kind: "integer", help: "CPU-time limit per task process, s" },
	"limit-files": { env: "TERN_LIMIT_FILES", kind: "integer", help: "open-files limit per task process" },
	"limit-procs": { env: "TERN_LIMIT_PROCS", kind: "integer", help: "process limit (per user, RLIMIT_NPROC)" },
	"limit-fsize": { env: "TERN_LIMIT_FSIZE", kind: "integer", help: "largest file a task may write, MiB" },
	"log-level": { env: "TERN_AGENT_LOG_LEVEL", kind: "string", help: "debug, info, warn, error or silent (default info)" }
} as const;
type OptionName = keyof typeof OPTIONS;

export function usage(): string {
	const lines = ["Usage: tern-agent --url URL --token TOKEN [options]", "", "Options (environment variable in brackets):"];
	for (const [name, option] of Object.entries(OPTIONS)) lines.push(`  --${name.padEnd(18)} ${option.help} [${option.env}]`);
	lines.push("  --help               this text", "  --version            the agent's version");
	return lines.join("\n");
}

function camel(name: string): string {
	return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** A JWT's subject, without verifying it (Tern does that). */
export function tokenSubject(token: string): string | null {
	const part = token.split(".")[1];
	if (!part) return null;
	try {
		const claims = JSON.parse(Buffer.from(part, "base64url").toString("utf8")) as { sub?: unknown };
		return typeof claims.sub === "string" ? claims.sub : null;
	} catch {
		return null;
	}
}

export interface ParsedArgs {
	help: boolean;
	version: boolean;
	config: AgentConfig | null;
}

/**
 * Reads the configuration from argv (without node and script), the environment and the config
 * file. Throws ConfigError naming the option at fault.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): ParsedArgs {
	const parseOptions: Record<string, { type: "string" | "boolean" }> = {
		help: { type: "boolean" },
		version: { type: "boolean" }
	};
	for (const [name, option] of Object.entries(OPTIONS))
		parseOptions[name] = { type: option.kind === "boolean" ? "boolean" : "string" };
	// An alias kept for scripts that name the socket endpoint after the transport.
	parseOptions["transport-url"] = { type: "string" };
	let values: Record<string, string | boolean | undefined>;
	try {
		({ values } = parseArgs({ args: argv, options: parseOptions, strict: true, allowPositionals: false }));
	} catch (err) {
		throw new ConfigError(`${(err as Error).message}\n\n${usage()}`);
	}
	if (values.help) return { help: true, version: false, config: null };
	if (values.version) return { help: false, version: true, config: null };
	if (values["transport-url"] !== undefined && values["socket-url"] === undefined)
		values["socket-url"] = values["transport-url"];

	const configPath = (values.config as string | undefined) ?? env.TERN_AGENT_CONFIG;
	let file: Record<string, unknown> = {};
	if (configPath) {
		try {
			file = JSON.parse(readFileSync(configPath, "utf8")) as Record<string, unknown>;
		} catch (err) {
			throw new ConfigError(`--config ${configPath}: ${(err as Error).message}`);
		}
		if (typeof file !== "object" || file === null || Array.isArray(file))
			throw new ConfigError(`--config ${configPath}: expected a JSON object`);
		const known = new Set(Object.keys(OPTIONS).map(camel));
		for (const key of Object.keys(file))
			if (!known.has(key)) throw new ConfigError(`--config ${configPath}: unknown option '${key}'`);
	}

	/** The raw value of an option and where it came from, for messages. */
	const raw = (name: OptionName): { value: unknown; from: string } | undefined => {
		if (values[name] !== undefined) return { value: values[name], from: `--${name}` };
		const fromEnv = env[OPTIONS[name].env];
		if (fromEnv !== undefined && fromEnv !== "") return { value: fromEnv, from: OPTIONS[name].env };
		const key = camel(name);
		if (file[key] !== undefined) return { value: file[key], from: `${configPath}: ${key}` };
		return undefined;
	};
	const str = (name: OptionName): string | undefined => {
		const got = raw(name);
		if (!got) return undefined;
		if (typeof got.value !== "string") throw new ConfigError(`${got.from} must be a string`);
		return got.value;
	};
	const list = (name: OptionName): string[] | undefined => {
		const got = raw(name);
		if (!got) return undefined;
		if (Array.isArray(got.value) && got.value.every(v => typeof v === "string")) return got.value as string[];
		if (typeof got.value !== "string") throw new ConfigError(`${got.from} must be a comma-separated list`);
		return got.value
			.split(",")
			.map(s => s.trim())
			.filter(Boolean);
	};
	const bool = (name: OptionName): boolean => {
		const got = raw(name);
		if (!got) return false;
		if (typeof got.value === "boolean") return got.value;
		if (typeof got.value === "string" && /^(1|true|yes|on)$/i.test(got.value)) return true;
		if (typeof got.value === "string" && /^(0|false|no|off)$/i.test(got.value)) return false;
		throw new ConfigError(`${got.from} must be true or false`);
	};
	const num = (name: OptionName, fallback: number, min: number, max: number, integer: boolean): number => {
		const got = raw(name);
		if (!got) return fallback;
		const n = typeof got.value === "number" ? got.value : Number(got.value);
		if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n)))
			throw new ConfigError(
				`${got.from} must be ${integer ? "an integer" : "a number"} from ${min} to ${max}, not '${String(got.value)}'`
			);
		return n;
	};
	const seconds = (name: OptionName, fallback: number, min = 0.01, max = 86_400) =>
		Math.round(num(name, fallback, min, max, false) * 1000);
	const optionalInt = (name: OptionName): number | undefined =>
		raw(name) === undefined ? undefined : num(name, 0, 1, Number.MAX_SAFE_INTEGER, true);

	const url = str("url");
	if (!url) throw new ConfigError(`--url (or TERN_URL) is required: Tern's base URL\n\n${usage()}`);
	if (!/^https?:\/\/[^/]/.test(url)) throw new ConfigError(`--url must be an http:// or https:// URL, not '${url}'`);
	let token = str("token");
	const tokenRaw = raw("token");
	let tokenFrom: AgentConfig["tokenFrom"] = !tokenRaw
		? "file"
		: tokenRaw.from === "--token"
			? "argv"
			: tokenRaw.from === OPTIONS.token.env
				? "env"
				: "config";
	const tokenFile = str("token-file");
	if (!token && tokenFile) {
		tokenFrom = "file";
		try {
			token = readFileSync(tokenFile, "utf8").trim();
		} catch (err) {
			throw new ConfigError(`--token-file ${tokenFile}: ${(err as Error).message}`);
		}
	}
	if (!token) throw new ConfigError(`--token (or TERN_TOKEN, or --token-file) is required: the terminal's token\n\n${usage()}`);
	const subject = tokenSubject(token);
	const terminalId = str("terminal-id") ?? subject;
	if (!terminalId) throw new ConfigError("The token carries no terminal id (subject): give --terminal-id");
	if (subject && terminalId !== subject)
		throw new ConfigError(`--terminal-id '${terminalId}' does not match the token, which is for '${subject}'`);

	const transport = (str("transport") ?? "auto") as TransportMode;
	if (!["auto", "socket", "pull"].includes(transport))
		throw new ConfigError(`--transport must be auto, socket or pull, not '${transport}'`);
	const logLevel = (str("log-level") ?? "info") as LogLevel;
	if (!LOG_LEVELS.includes(logLevel)) throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(", ")}`);

	const labels: Record<string, string> = {};
	for (const item of list("labels") ?? []) {
		const eq = item.indexOf("=");
		if (eq <= 0) throw new ConfigError(`--labels: '${item}' is not key=value`);
		labels[item.slice(0, eq)] = item.slice(eq + 1);
	}
	const caFile = str("ca");
	let ca: string | null = null;
	if (caFile) {
		try {
			ca = readFileSync(caFile, "utf8");
		} catch (err) {
			throw new ConfigError(`--ca ${caFile}: ${(err as Error).message}`);
		}
		if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new ConfigError(`--ca ${caFile}: no PEM certificate in it`);
	}
	// Several gateways, comma-separated: the agent moves to the next when one is busy, gone or says to.
	const socketUrls = (str("socket-url") ?? url)
		.split(",")
		.map(u => u.trim().replace(/\/+$/, "").replace(/^ws/, "http"))
		.filter(Boolean);
	if (socketUrls.length === 0 || !socketUrls.every(u => /^https?:\/\/[^/]/.test(u)))
		throw new ConfigError(`--socket-url must be an http(s):// or ws(s):// URL, or several separated by commas`);

	const config: AgentConfig = {
		url: url.replace(/\/+$/, ""),
		socketUrl: socketUrls.join(","),
		token,
		tokenFrom,
		ca,
		terminalId,
		concurrency: num("concurrency", 4, 1, 10_000, true),
		labels,
		runners: list("runners") ?? null,
		allowCommands: list("allow-commands") ?? [],
		allowHosts: list("allow-hosts") ?? [],
		allowLinkLocal: bool("allow-link-local"),
		transport,
		dataDir: resolve(str("data-dir") ?? join(homedir(), ".tern-agent", terminalId.replace(/[^A-Za-z0-9_.-]/g, "_"))),
		heartbeatMs: seconds("heartbeat", 30),
		reconnectInitialMs: seconds("reconnect-initial", 0.5),
		reconnectMaxMs: seconds("reconnect-max", 30),
		fallbackAfter: num("fallback-after", 3, 1, 1000, true),
		pullIntervalMs: seconds("pull-interval", 2),
		connectTimeoutMs: seconds("connect-timeout", 10),
		killGraceMs: seconds("kill-grace", 5, 0),
		// A result carries both streams and must stay under Tern's 1 MiB message limit.
		outputLimit: num("output-limit", 65_536, 0, 384 * 1024, true),
		logLimit: num("log-limit", 1024 * 1024, 0, 1024 * 1024 * 1024, true),
		drainTimeoutMs: seconds("drain-timeout", 30, 0),
		limits: {
			memoryMb: optionalInt("limit-memory"),
			cpuSeconds: optionalInt("limit-cpu"),
			openFiles: optionalInt("limit-files"),
			processes: optionalInt("limit-procs"),
			fileSizeMb: optionalInt("limit-fsize")
		},
		logLevel
	};
	if (config.reconnectMaxMs < config.reconnectInitialMs) config.reconnectMaxMs = config.reconnectInitialMs;
	return { help: false, version: false, config };
}
