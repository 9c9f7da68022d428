/**
 * A real Tern for a test suite: every service in one broker, a fresh SQLite file, the HTTP
 * server on a free port, short timers. Plus clients: REST through fetch, terminals through
 * socket.io-client and ws, and waits that end on a condition, never on a fixed sleep.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import type { ServiceBroker } from "moleculer";
import { io, type Socket } from "socket.io-client";
import WebSocket from "ws";
import { loadConfig } from "../../moleculer.config.ts";
import { startNode, type SettingsOverrides } from "../../node.ts";
import type { TaskBody, TaskPush, TaskQueryView, TaskStatus } from "../../lib/contracts.ts";
import { TernClient } from "../../client/index.ts";
import { restCall, type Reply } from "../support/rest.ts";
import { until, waitFor } from "../support/wait.ts";

export { waitFor } from "../support/wait.ts";

export const ADMIN_PASSWORD = "test-admin-password";

/** Timers short enough for tests, long enough not to fire by accident. */
export const FAST: SettingsOverrides = {
	dispatcher: { sweepInterval: 50, rescanInterval: 200 },
	// The rate limits are off: suites drive one address, token and terminal faster than real use
	// (the limits have their own tests: http-security, socket-limits).
	gateway: { heartbeatCheckInterval: 100, activityFlushInterval: 100, messageRateLimit: 0, reconnectLimit: 0 },
	api: { requestLimits: null }
};

export interface TernOptions {
	settings?: SettingsOverrides;
	/** Reuse a data dir (restart tests); a fresh one otherwise. */
	dataDir?: string;
	/** Keep the data dir on close. */
	keep?: boolean;
	/** DB_URI of the node (mysql://…); a SQLite file in the data dir otherwise. */
	dbUri?: string;
	/** More environment for the node's configuration (TERN_DATA_KEYS, say). */
	env?: Record<string, string>;
}

export type { Reply as ApiReply } from "../support/rest.ts";

export class TestTern {
	broker!: ServiceBroker;
	url!: string;
	port!: number;
	dataDir!: string;
	adminToken!: string;
	/** The client SDK, as the admin: what submit, query and waitForStatus go through. */
	client!: TernClient;
	dbUri?: string;
	private keep = false;
	private stopped = false;
	private readonly sockets: { close(): void }[] = [];

	static async start(options: TernOptions = {}): Promise<TestTern> {
		const tern = new TestTern();
		tern.dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "tern-test-"));
		tern.keep = options.keep ?? false;
		tern.dbUri = options.dbUri;
		const config = loadConfig({
			TERN_DATA_DIR: tern.dataDir,
			...(options.dbUri ? { DB_URI: options.dbUri } : {}),
			PORT: "0",
			TERN_ADMIN_PASSWORD: ADMIN_PASSWORD,
			LOGLEVEL: "warn",
			...options.env
		});
		const settings: SettingsOverrides = {};
		for (const name of new Set([...Object.keys(FAST), ...Object.keys(options.settings ?? {})]) as Set<
			keyof SettingsOverrides
		>)
			settings[name] = { ...FAST[name], ...options.settings?.[name] };
		tern.broker = await startNode({ config, settings, broker: { logger: false } });
		const api = tern.broker.getLocalService("api") as unknown as { server: Server };
		tern.port = (api.server.address() as AddressInfo).port;
		tern.url = `http://127.0.0.1:${tern.port}`;
		tern.adminToken = (
			await tern.api<{ token: string }>("POST", "/api/auth/login", { username: "admin", password: ADMIN_PASSWORD })
		).body.token;
		tern.client = new TernClient({ url: tern.url, token: tern.adminToken });
		return tern;
	}

	async close(): Promise<void> {
		this.client?.close();
		for (const socket of this.sockets.splice(0)) socket.close();
		if (!this.stopped) await this.broker.stop();
		this.stopped = true;
		if (!this.keep) rmSync(this.dataDir, { recursive: true, force: true });
	}

	/**
	 * Stops the node as a restart would — the broker goes down with its connections still open,
	 * so the server is the one that drops them — keeping the data dir. Then restart() starts the
	 * next node (without stopping this one twice); a test that needs the node down for a while
	 * (downtime is what it tests) waits in between.
	 */
	async stop(): Promise<void> {
		if (this.stopped) return;
		this.stopped = true;
		await this.broker.stop();
		for (const socket of this.sockets.splice(0)) socket.close();
	}

	/**
	 * Stops this node the way a restart would — the broker goes down with its connections still
	 * open, so the server is the one that drops them — then starts a new node on the same data
	 * dir (same database, same JWT secret file). The new node listens on a new port; this one
	 * is done with and must not be used again.
	 */
	async restart(settings?: SettingsOverrides): Promise<TestTern> {
		await this.stop();
		return TestTern.start({ settings, dataDir: this.dataDir, keep: this.keep, dbUri: this.dbUri });
	}

	/** A REST call; the admin token unless another (or null for none) is given. */
	async api<T = any>(method: string, path: string, body?: unknown, token: string | null = this.adminToken): Promise<Reply<T>> {
		return restCall<T>(this.url + path, method, body, token);
	}

	async registerTerminal(id: string, extra: Record<string, unknown> = {}): Promise<string> {
		const reply = await this.api<{ token: string }>("POST", "/api/terminals", { id, ...extra });
		if (reply.status !== 201) throw new Error(`register ${id}: ${reply.status} ${JSON.stringify(reply.body)}`);
		return reply.body.token;
	}

	async submit(body: TaskBody): Promise<string> {
		return (await this.client.submit(body)).taskId;
	}

	async query(taskId: string): Promise<TaskQueryView> {
		return this.client.query(taskId);
	}

	/** Resolves once the task reaches `status`. */
	async waitForStatus(taskId: string, status: TaskStatus, timeoutMs = 5000): Promise<TaskQueryView> {
		let last: TaskQueryView | undefined;
		await waitFor(
			async () => (last = await this.query(taskId)).status === status,
			timeoutMs,
			() => `task ${taskId} to be ${status} (is ${last?.status})`
		);
		return last!;
	}

	/** Resolves once the terminal shows as online (or offline) in GET /api/terminals/:id. */
	async waitForTerminal(id: string, status: "online" | "offline" | "disabled", timeoutMs = 5000): Promise<void> {
		await waitFor(
			async () => (await this.api("GET", `/api/terminals/${id}`)).body.status === status,
			timeoutMs,
			() => `terminal ${id} to be ${status}`
		);
	}

	/** A socket.io terminal, connected (or rejected: the promise then fails with the server's error). */
	async connectTerminal(id: string, token: string, options: { concurrency?: number } = {}): Promise<TestTerminal> {
		const socket = io(`${this.url}/terminal`, {
			auth: { token, ...(options.concurrency ? { concurrency: options.concurrency } : {}) },
			transports: ["websocket"],
			reconnection: false,
			forceNew: true
		});
		const terminal = new TestTerminal(id, socket);
		this.sockets.push({ close: () => socket.close() });
		await new Promise<void>((resolve, reject) => {
			socket.once("connect", resolve);
			socket.once("connect_error", reject);
		});
		await this.waitForTerminal(id, "online");
		return terminal;
	}

	/** A raw WebSocket to `path` with a token; resolves when open, rejects with the HTTP status. */
	async openWs(path: string, token: string | null, via: "header" | "query" = "header"): Promise<RawSocket> {
		const url = `ws://127.0.0.1:${this.port}${path}${token && via === "query" ? `?token=${token}` : ""}`;
		const ws = new WebSocket(url, { headers: token && via === "header" ? { authorization: `Bearer ${token}` } : {} });
		const raw = new RawSocket(ws);
		this.sockets.push({ close: () => ws.terminate() });
		await new Promise<void>((resolve, reject) => {
			ws.once("open", resolve);
			ws.once("unexpected-response", (_req, res) => {
				let body = "";
				res.on("data", chunk => (body += chunk));
				res.on("end", () =>
					reject(
						Object.assign(new Error(`HTTP ${res.statusCode}`), {
							status: res.statusCode,
							body: JSON.parse(body || "{}")
						})
					)
				);
			});
			ws.once("error", reject);
		});
		return raw;
	}
}

/** A socket.io terminal that records what it receives. */
export class TestTerminal {
	readonly id: string;
	readonly socket: Socket;
	readonly tasks: TaskPush[] = [];
	readonly cancels: { taskId: string; attempt?: number; reason?: string }[] = [];
	readonly errors: { type: string; message: string; event?: string }[] = [];

	constructor(id: string, socket: Socket) {
		this.id = id;
		this.socket = socket;
		socket.on("task", (task: TaskPush) => this.tasks.push(task));
		socket.on("cancel", msg => this.cancels.push(msg));
		socket.on("error", err => this.errors.push(err));
	}

	/** Resolves once `condition` holds over what this terminal recorded, checked as each message comes. */
	until(
		condition: () => boolean,
		timeoutMs = 5000,
		what: () => string = () => `terminal ${this.id}: condition`
	): Promise<void> {
		return TestTerminal.until([this], condition, timeoutMs, what);
	}

	/** Resolves once `condition` holds over what these terminals recorded, checked as each message comes. */
	static until(
		terminals: TestTerminal[],
		condition: () => boolean,
		timeoutMs = 5000,
		what: () => string = () => "condition over the terminals"
	): Promise<void> {
		const sockets = terminals.map(t => t.socket);
		return until(sockets, ["task", "cancel", "error", "disconnect"], condition, timeoutMs, what);
	}

	/** The next task not yet taken by an earlier call. */
	private taken = 0;
	async nextTask(timeoutMs = 5000): Promise<TaskPush> {
		await this.until(
			() => this.tasks.length > this.taken,
			timeoutMs,
			() => `terminal ${this.id} to receive task #${this.taken + 1}`
		);
		return this.tasks[this.taken++];
	}

	/** Emits with an ack callback and resolves with the server's reply. */
	request<T = any>(event: string, data?: unknown): Promise<T> {
		return new Promise(resolve => {
			if (data === undefined) this.socket.emit(event, resolve);
			else this.socket.emit(event, data, resolve);
		});
	}

	ack(task: TaskPush) {
		return this.request("ack", { taskId: task.taskId, attempt: task.attempt });
	}

	result(
		task: TaskPush,
		status: "success" | "failed" = "success",
		output: unknown = { ok: true },
		extra: Record<string, unknown> = {}
	) {
		return this.request("result", { taskId: task.taskId, attempt: task.attempt, status, output, ...extra });
	}

	close(): void {
		this.socket.close();
	}
}

/** A raw WebSocket that records parsed messages. */
export class RawSocket {
	readonly ws: WebSocket;
	readonly messages: any[] = [];
	private taken = 0;

	constructor(ws: WebSocket) {
		this.ws = ws;
		ws.on("message", data => this.messages.push(JSON.parse(data.toString())));
	}

	send(message: unknown): void {
		this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
	}

	/** The next message (optionally of a type) not yet taken. */
	async next(type?: string, timeoutMs = 5000): Promise<any> {
		let found = -1;
		await until(
			this.ws,
			["message"],
			() => {
				for (let i = this.taken; i < this.messages.length; i++) {
					if (!type || this.messages[i].type === type) {
						found = i;
						return true;
					}
				}
				return false;
			},
			timeoutMs,
			() => `a ${type ?? "any"} message (have ${JSON.stringify(this.messages.slice(this.taken))})`
		);
		this.taken = found + 1;
		return this.messages[found];
	}

	close(): Promise<void> {
		return new Promise(resolve => {
			if (this.ws.readyState === WebSocket.CLOSED) return resolve();
			this.ws.once("close", () => resolve());
			this.ws.close();
		});
	}
}
