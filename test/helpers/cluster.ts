/**
 * A real Tern cluster for a test suite: every node a separate OS process (`node tern.ts`) on
 * NATS and a fresh MariaDB database, each with its own health port — the benchmark's
 * (test/support/node-process.ts). Plus the clients that drive it from outside: REST through fetch,
 * terminals that fail over between gateways, and `/client` followers. Nodes can be killed
 * (`SIGKILL`) and started again.
 */
import { io, type Socket } from "socket.io-client";
import type { TaskPush, TaskQueryView, TaskStatus, TaskStatusEvent } from "../../lib/contracts.ts";
import { ProcessCluster, type NodeProcess, type NodeSpec } from "../support/node-process.ts";
import { restCall, type Reply } from "../support/rest.ts";
import { ADMIN_PASSWORD, waitFor } from "./tern.ts";

export { NodeProcess as ClusterNode, freePort, NATS_URL, type NodeSpec } from "../support/node-process.ts";

/** Set TERN_CLUSTER_LOGS=1 to see every node's output (TERN_CLUSTER_LOGLEVEL=info for more of it). */
const ECHO_LOGS = process.env.TERN_CLUSTER_LOGS === "1";

export interface ClusterOptions {
	/** Prefix of the namespace and the database name. */
	name: string;
	nodes: NodeSpec[];
	/** How long each node may take to be ready, ms. @defaultValue 30000 */
	readyTimeoutMs?: number;
}

export class TestCluster extends ProcessCluster {
	adminToken = "";
	private readonly clients: { close(): void }[] = [];

	/** Creates the database, starts every node, waits until each is ready and the api answers. */
	static async start(options: ClusterOptions): Promise<TestCluster> {
		const cluster = new TestCluster(options.name);
		await cluster.launch(
			{
				nodes: options.nodes,
				adminPassword: ADMIN_PASSWORD,
				// Tests drive one address, token and terminal faster than real use: the limits have tests of their own.
				env: {
					LOGLEVEL: process.env.TERN_CLUSTER_LOGLEVEL ?? "warn",
					TERN_TOKEN_RATE_LIMIT: "0",
					TERN_SOCKET_RATE_LIMIT: "0"
				},
				node: { echo: ECHO_LOGS, readyTimeoutMs: options.readyTimeoutMs ?? 30_000 }
			},
			() => cluster.waitFormed()
		);
		return cluster;
	}

	/** The node running `api`. */
	get apiNode(): NodeProcess {
		return this.running("api")[0];
	}

	/** Until the api logs in and reaches the dispatcher, the cache and the terminals registry. */
	async waitFormed(timeoutMs = 30_000): Promise<void> {
		await waitFor(
			async () => {
				try {
					if (!this.adminToken) {
						const login = await this.api<{ token: string }>(
							"POST",
							"/api/auth/login",
							{ username: "admin", password: ADMIN_PASSWORD },
							null
						);
						if (login.status !== 200) return false;
						this.adminToken = login.body.token;
					}
					return (
						(await this.api("GET", "/api/tasks?pageSize=1")).status === 200 &&
						(await this.api("GET", "/api/terminals")).status === 200
					);
				} catch {
					return false;
				}
			},
			timeoutMs,
			() => "the api to reach the cluster"
		);
	}

	/** Closes the clients, stops every node (SIGTERM, then SIGKILL) and drops the database. */
	override async close(): Promise<void> {
		for (const client of this.clients.splice(0)) client.close();
		await super.close();
	}

	/** A REST call to the api node; the admin token unless another (or null) is given. */
	async api<T = any>(method: string, path: string, body?: unknown, token: string | null = this.adminToken): Promise<Reply<T>> {
		return restCall<T>(this.apiNode.url + path, method, body, token, AbortSignal.timeout(30_000));
	}

	async registerTerminal(id: string, extra: Record<string, unknown> = {}): Promise<string> {
		const reply = await this.api<{ token: string }>("POST", "/api/terminals", { id, ...extra });
		if (reply.status !== 201) throw new Error(`register ${id}: ${reply.status} ${JSON.stringify(reply.body)}`);
		return reply.body.token;
	}

	/**
	 * Submits as a careful client does: with an idempotency key, and again with the same key while
	 * the answer is a server error or none at all (the submit may or may not have been made).
	 * Counts those retries in `stats.retries`.
	 */
	async submit(
		body: Record<string, unknown> & { idempotencyKey: string },
		stats?: { retries: number },
		timeoutMs = 60_000
	): Promise<string> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			let failure: string;
			try {
				const reply = await this.api<{ taskId: string }>("POST", "/api/task/submit", body);
				if (reply.status === 201) return reply.body.taskId;
				failure = `${reply.status} ${JSON.stringify(reply.body)}`;
				if (reply.status < 500) throw new Error(`submit refused: ${failure}`);
			} catch (err) {
				if ((err as Error).message.startsWith("submit refused")) throw err;
				failure = (err as Error).message;
			}
			if (Date.now() > deadline) throw new Error(`submit kept failing: ${failure}`);
			if (stats) stats.retries++;
			// A careful client's pause before it submits again (the same key makes that safe).
			await new Promise(resolve => setTimeout(resolve, 100));
		}
	}

	async query(taskId: string): Promise<TaskQueryView> {
		return (await this.api<TaskQueryView>("GET", `/api/task/query?taskId=${taskId}`)).body;
	}

	async waitForStatus(taskId: string, status: TaskStatus, timeoutMs = 10_000): Promise<TaskQueryView> {
		let last: TaskQueryView | undefined;
		await waitFor(
			async () => (last = await this.query(taskId)).status === status,
			timeoutMs,
			() => `task ${taskId} to be ${status} (is ${last?.status})`
		);
		return last!;
	}

	/** Counts of tasks of `type` in all states and in `status`, from `GET /api/tasks`. */
	async count(type: string, status?: TaskStatus): Promise<number> {
		const query = `/api/tasks?type=${encodeURIComponent(type)}&pageSize=1${status ? `&status=${status}` : ""}`;
		const reply = await this.api<{ total: number }>("GET", query);
		if (reply.status !== 200) throw new Error(`list: ${reply.status} ${JSON.stringify(reply.body)}`);
		return reply.body.total;
	}

	/** The gateway node a terminal is connected through, per the api (null when offline). */
	async terminalNode(id: string): Promise<string | null> {
		const view = (await this.api<{ status: string; nodeID: string | null }>("GET", `/api/terminals/${id}`)).body;
		return view.status === "online" ? view.nodeID : null;
	}

	/** A terminal that connects through `urls[0]` and fails over along the list. */
	async connectTerminal(id: string, token: string, urls: string[], options: TerminalOptions = {}): Promise<ClusterTerminal> {
		const terminal = new ClusterTerminal(id, token, urls, options);
		this.clients.push(terminal);
		await terminal.start();
		await waitFor(
			async () => (await this.terminalNode(id)) !== null,
			10_000,
			() => `terminal ${id} to be online`
		);
		return terminal;
	}

	/** A `/client` follower on a gateway. */
	async follow(url: string): Promise<TaskFollower> {
		const follower = new TaskFollower(url, this.adminToken);
		this.clients.push(follower);
		await follower.connected;
		return follower;
	}
}

export interface TerminalOptions {
	/** `work`: ack, then a result after `workMs`; `silent`: never acks; `stuck`: acks, never answers. */
	mode?: "work" | "silent" | "stuck";
	/** [min, max] ms a task takes. @defaultValue [5, 30] */
	workMs?: [number, number];
	concurrency?: number;
}

/** Error types that settle an ack or result: sending it again cannot change the answer. */
function isRetryable(error: { code?: number; type?: string } | undefined): boolean {
	return !error || (error.code ?? 500) >= 500 || error.type === "STATE_CONFLICT";
}

/**
 * A socket.io terminal as a careful agent would write it: on `connect_error` or a dropped
 * connection it reconnects to the next gateway of its list (the built-in reconnection of
 * socket.io retries only one URL); acks and results are sent again until the server gives a
 * final answer, so a result sent into a dying gateway is not lost. It drops a repeated
 * (taskId, attempt), and counts a task it receives after completing it as a duplicate completion.
 */
export class ClusterTerminal {
	readonly id: string;
	readonly urls: string[];
	private readonly token: string;
	private readonly options: Required<TerminalOptions>;
	socket: Socket | null = null;
	private index = 0;
	private closed = false;
	private failures = 0;
	/** Every connect: through which URL, when. */
	readonly connects: { url: string; at: number }[] = [];
	/** Every push received, in order. */
	readonly received: TaskPush[] = [];
	private readonly seen = new Set<string>();
	/** Tasks whose success the server confirmed (status COMPLETED). */
	readonly completed = new Set<string>();
	/** The same (taskId, attempt) pushed twice. */
	duplicateDeliveries = 0;
	/** Tasks (`taskId#attempt`) received again after this terminal completed them. */
	readonly duplicateCompletions: string[] = [];
	/** Attempts of each task whose ack the server confirmed: each one run, so more than one is a task run twice. */
	readonly runs = new Map<string, number>();
	/** Acks and results refused with a final error, by type. */
	readonly refused = new Map<string, number>();
	readonly cancels: { taskId: string; attempt?: number; reason?: string }[] = [];
	private firstConnect!: { resolve: () => void; reject: (err: Error) => void };
	/** Sends waiting for a connection, released by the next connect (or by close). */
	private connectWaiters: (() => void)[] = [];

	constructor(id: string, token: string, urls: string[], options: TerminalOptions = {}) {
		this.id = id;
		this.token = token;
		this.urls = urls;
		this.options = {
			mode: options.mode ?? "work",
			workMs: options.workMs ?? [5, 30],
			concurrency: options.concurrency ?? 16
		};
	}

	get connected(): boolean {
		return this.socket?.connected ?? false;
	}

	/** Pushes this terminal dropped: a repeated (taskId, attempt), or a task it had completed. */
	get pushedAgain(): number {
		return this.duplicateDeliveries + this.duplicateCompletions.length;
	}

	get url(): string {
		return this.urls[this.index];
	}

	start(): Promise<void> {
		const first = new Promise<void>((resolve, reject) => (this.firstConnect = { resolve, reject }));
		this.open();
		return first;
	}

	/** The first connect at or after `at` (ms since the epoch), if any. */
	connectAfter(at: number): { url: string; at: number } | undefined {
		return this.connects.find(c => c.at >= at);
	}

	private open(): void {
		const socket = io(`${this.url}/terminal`, {
			auth: { token: this.token, concurrency: this.options.concurrency },
			transports: ["websocket"],
			// Reconnection is this class's: to the next gateway, not the same one again.
			reconnection: false,
			forceNew: true,
			timeout: 5000
		});
		this.socket = socket;
		socket.on("connect", () => {
			this.failures = 0;
			this.connects.push({ url: this.url, at: Date.now() });
			this.firstConnect.resolve();
			for (const release of this.connectWaiters.splice(0)) release();
		});
		socket.on("connect_error", err => {
			const data = (err as Error & { data?: { type?: string } }).data;
			// A refused credential will not work on another gateway either.
			if (data?.type && ["UNAUTHORIZED", "INVALID_TOKEN", "FORBIDDEN", "TERMINAL_DISABLED"].includes(data.type)) {
				this.firstConnect.reject(err);
				return;
			}
			this.failover(socket);
		});
		socket.on("disconnect", () => this.failover(socket));
		socket.on("task", (task: TaskPush) => this.onTask(task));
		socket.on("cancel", (msg: { taskId: string; attempt?: number; reason?: string }) => this.cancels.push(msg));
	}

	/** The connection failed or dropped: the next gateway, after a short pause that grows. */
	private failover(socket: Socket): void {
		if (this.closed || socket !== this.socket) return;
		socket.removeAllListeners();
		socket.close();
		this.socket = null;
		this.index = (this.index + 1) % this.urls.length;
		// A reconnecting agent's backoff, so that a gateway that is down is not hammered.
		const pause = Math.min(50 * 2 ** this.failures++, 1000);
		setTimeout(() => !this.closed && this.open(), pause);
	}

	private onTask(task: TaskPush): void {
		const key = `${task.taskId}#${task.attempt}`;
		if (this.seen.has(key)) {
			this.duplicateDeliveries++;
			return;
		}
		this.seen.add(key);
		this.received.push(task);
		if (this.completed.has(task.taskId)) {
			this.duplicateCompletions.push(key);
			return;
		}
		if (this.options.mode === "silent") return;
		void this.run(task);
	}

	private async run(task: TaskPush): Promise<void> {
		const ref = { taskId: task.taskId, attempt: task.attempt };
		const ack = await this.send("ack", ref);
		if (!ack.ok || this.options.mode === "stuck") return;
		this.runs.set(task.taskId, (this.runs.get(task.taskId) ?? 0) + 1);
		// The terminal's work: it takes this long, then reports.
		const [min, max] = this.options.workMs;
		await new Promise(resolve => setTimeout(resolve, min + Math.random() * (max - min)));
		const result = await this.send("result", { ...ref, status: "success", output: { by: this.id, attempt: task.attempt } });
		if (result.ok && result.status === "COMPLETED") this.completed.add(task.taskId);
	}

	/**
	 * Emits until the server answers for good: ok, or an error that sending again would not
	 * change. Without a connection it waits for the next connect (whichever gateway).
	 */
	private async send(event: "ack" | "result", data: Record<string, unknown>): Promise<Record<string, any>> {
		const deadline = Date.now() + 120_000;
		while (!this.closed && Date.now() < deadline) {
			const socket = this.socket;
			if (!socket?.connected) {
				await this.nextConnect(deadline - Date.now());
				continue;
			}
			try {
				const reply = (await socket.timeout(5000).emitWithAck(event, data)) as Record<string, any>;
				if (reply.ok) return reply;
				if (!isRetryable(reply.error)) {
					this.refused.set(reply.error.type, (this.refused.get(reply.error.type) ?? 0) + 1);
					return reply;
				}
			} catch {
				// No answer: the connection dropped or the gateway is gone; sent again once connected.
				continue;
			}
			// Refused for now (a dispatcher taking over): a client's pause before it asks again.
			await new Promise(resolve => setTimeout(resolve, 50));
		}
		return { ok: false, error: { type: "GAVE_UP" } };
	}

	/** Resolves at the next connect, at close, or after `timeoutMs`, whichever comes first. */
	private nextConnect(timeoutMs: number): Promise<void> {
		if (this.closed || this.socket?.connected) return Promise.resolve();
		return new Promise(resolve => {
			const timer = setTimeout(release, timeoutMs);
			const waiters = this.connectWaiters;
			function release() {
				clearTimeout(timer);
				const index = waiters.indexOf(release);
				if (index >= 0) waiters.splice(index, 1);
				resolve();
			}
			waiters.push(release);
		});
	}

	close(): void {
		this.closed = true;
		for (const release of this.connectWaiters.splice(0)) release();
		this.socket?.removeAllListeners();
		this.socket?.close();
		this.socket = null;
	}
}

/** A `/client` socket that follows tasks and records their status events. */
export class TaskFollower {
	readonly socket: Socket;
	readonly events: TaskStatusEvent[] = [];
	readonly connected: Promise<void>;

	constructor(url: string, token: string) {
		this.socket = io(`${url}/client`, { auth: { token }, transports: ["websocket"], forceNew: true, reconnection: false });
		this.socket.on("status", (event: TaskStatusEvent) => this.events.push(event));
		this.connected = new Promise((resolve, reject) => {
			this.socket.once("connect", resolve);
			this.socket.once("connect_error", reject);
		});
	}

	async subscribe(taskId: string): Promise<void> {
		const reply = (await this.socket.timeout(5000).emitWithAck("subscribe", { taskId })) as { ok: boolean };
		if (!reply.ok) throw new Error(`subscribe ${taskId}: ${JSON.stringify(reply)}`);
	}

	statuses(taskId: string): TaskStatus[] {
		return this.events.filter(e => e.taskId === taskId).map(e => e.status);
	}

	close(): void {
		this.socket.close();
	}
}
