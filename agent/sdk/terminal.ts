/**
 * The connection to Tern, whatever carries it. The agent dials out over socket.io (namespace
 * `/terminal`, WebSocket transport only) with its token, concurrency, capabilities and labels,
 * sends a heartbeat every 30 s, and reconnects with jittered exponential backoff when the
 * connection drops. A gateway that is busy (GATEWAY_BUSY) is asked again after the `retryAfterMs`
 * it names; one that lets the agent go with `reconnect` is left for the next URL after the
 * `delayMs` it names (several gateways: `socketUrl` "a,b", tried in turn). When the socket cannot connect at all (a proxy refusing upgrades, a server
 * without WebSockets) it falls back to HTTP pull (`GET /api/task/pull`) while it keeps trying
 * the socket in the background, and goes back to it once it connects.
 *
 * Acks, progress and results go over the socket when it is up and over REST
 * (`POST /api/task/{ack,progress,result}`) otherwise: the same messages, the same attempts.
 */
import { EventEmitter } from "node:events";
import { io, type Socket } from "socket.io-client";
import type { AckParams, ProgressParams, ResultParams, SocketErrorPayload, TaskPush } from "../../lib/contracts.ts";
import { Backoff } from "./backoff.ts";
import type { Logger } from "./log.ts";
import { RestClient, TernError, toTernError, type Reply } from "./rest.ts";

/** `connecting`: no socket yet (or it dropped); `socket`/`pull`: how tasks come; `draining`: none come any more. */
export type ChannelState = "connecting" | "socket" | "pull" | "draining" | "stopped";

export interface CancelMessage {
	taskId: string;
	attempt?: number;
	reason?: string;
}

/** A progress message as the agent sends it: a log line carries its stream. */
export type ProgressMessage = ProgressParams;

export interface TerminalOptions {
	url: string;
	socketUrl: string;
	token: string;
	terminalId: string;
	concurrency: number;
	capabilities: string[];
	labels: Record<string, string>;
	transport: "auto" | "socket" | "pull";
	heartbeatMs: number;
	reconnectInitialMs: number;
	reconnectMaxMs: number;
	fallbackAfter: number;
	pullIntervalMs: number;
	connectTimeoutMs: number;
	logger: Logger;
	/** Free slots: how many tasks a pull may ask for. */
	freeSlots: () => number;
}

/** Refusals at connect that another transport would meet too: no fallback for them. */
const AUTH_REFUSALS = new Set([
	"UNAUTHORIZED",
	"INVALID_TOKEN",
	"FORBIDDEN",
	"TERMINAL_DISABLED",
	"TERMINAL_NOT_FOUND",
	"VALIDATION_ERROR"
]);

const SEND_TIMEOUT_MS = 15_000;

export interface TerminalEvents {
	task: [task: TaskPush, via: "socket" | "pull"];
	cancel: [message: CancelMessage];
	state: [state: ChannelState];
	/** A channel came up (socket connected, or pulling began): time to send what was held. */
	ready: [];
}

export class TernTerminal extends EventEmitter<TerminalEvents> {
	readonly rest: RestClient;
	state: ChannelState = "connecting";
	/** Socket connections made so far (tests and logs). */
	connects = 0;
	private readonly options: TerminalOptions;
	private readonly log: Logger;
	private socket: Socket | null = null;
	private readonly backoff: Backoff;
	private failures = 0;
	private reconnectTimer: NodeJS.Timeout | null = null;
	private heartbeatTimer: NodeJS.Timeout | null = null;
	private pulling = false;
	private wakePull: (() => void) | null = null;
	private readonly pending = new Set<(err: TernError) => void>();
	private readonly socketUrls: string[];
	private urlIndex = 0;
	/** The wait a gateway asked for before the next connection (busy, or letting the agent go). */
	private advisedDelay: number | null = null;

	constructor(options: TerminalOptions) {
		super();
		this.options = options;
		this.log = options.logger;
		this.rest = new RestClient(options.url, options.token);
		this.backoff = new Backoff({ initialMs: options.reconnectInitialMs, maxMs: options.reconnectMaxMs, jitter: 0.5 });
		this.socketUrls = options.socketUrl.split(",");
	}

	/** The gateway the socket connects to now. */
	get socketUrl(): string {
		return this.socketUrls[this.urlIndex];
	}

	/** The next gateway, when there are several. */
	private nextUrl(): void {
		this.urlIndex = (this.urlIndex + 1) % this.socketUrls.length;
	}

	start(): void {
		if (this.options.transport === "pull") this.enterPull("transport is 'pull'");
		else this.connectSocket();
	}

	/** Stops taking work: the socket closes (Tern returns what it pushed and was not acked) and pulls stop. Sends go on over REST. */
	drain(): void {
		if (this.state === "draining" || this.state === "stopped") return;
		this.setState("draining");
		this.clearTimers();
		this.closeSocket();
		this.wakePull?.();
	}

	stop(): void {
		this.drain();
		this.setState("stopped");
	}

	/** Wakes the pull loop early: a slot was freed. */
	wake(): void {
		this.wakePull?.();
	}

	get socketConnected(): boolean {
		return this.socket?.connected === true;
	}

	ack(message: AckParams): Promise<Reply> {
		return this.send("ack", message);
	}

	progress(message: ProgressMessage): Promise<Reply> {
		return this.send("progress", message);
	}

	result(message: ResultParams): Promise<Reply> {
		return this.send("result", message);
	}

	// ---------------------------------------------------------------- sending

	/** Over the socket when it is up, else over REST. TernError on failure (`definitive` when Tern refused it). */
	private send(event: "ack" | "progress" | "result", message: object): Promise<Reply> {
		const socket = this.socket;
		if (!socket?.connected) return this.rest.call<Reply>("POST", `/api/task/${event}`, message).then(reply => reply ?? {});
		return new Promise<Reply>((resolve, reject) => {
			let done = false;
			const fail = (err: TernError) => {
				if (done) return;
				done = true;
				this.pending.delete(fail);
				clearTimeout(timer);
				reject(err);
			};
			const timer = setTimeout(
				() => fail(new TernError(`No answer to '${event}' within ${SEND_TIMEOUT_MS} ms`, "TIMEOUT", 0, false)),
				SEND_TIMEOUT_MS
			);
			this.pending.add(fail);
			socket.emit(event, message, (reply: { ok: boolean; error?: SocketErrorPayload } & Reply) => {
				if (done) return;
				done = true;
				this.pending.delete(fail);
				clearTimeout(timer);
				if (reply?.ok) resolve(reply);
				else reject(toTernError(reply?.error));
			});
		});
	}

	// ---------------------------------------------------------------- the socket

	private connectSocket(): void {
		this.reconnectTimer = null;
		if (this.state === "draining" || this.state === "stopped") return;
		const o = this.options;
		const auth: Record<string, unknown> = { token: o.token, concurrency: o.concurrency, capabilities: o.capabilities };
		if (Object.keys(o.labels).length > 0) auth.labels = o.labels;
		const socket = io(`${this.socketUrl}/terminal`, {
			auth,
			transports: ["websocket"],
			reconnection: false,
			forceNew: true,
			timeout: o.connectTimeoutMs
		});
		this.socket = socket;
		socket.on("connect", () => {
			if (this.socket !== socket) return void socket.close();
			this.connects++;
			this.failures = 0;
			this.backoff.reset();
			this.log.info(
				`Connected to ${this.socketUrl} over socket.io as terminal '${o.terminalId}'${this.state === "pull" ? ": HTTP pull stops" : ""}`
			);
			this.setState("socket");
			this.wakePull?.();
			this.heartbeatTimer = setInterval(() => {
				if (socket.connected) socket.emit("heartbeat");
			}, o.heartbeatMs);
			this.emit("ready");
		});
		socket.on("connect_error", (err: Error & { data?: SocketErrorPayload }) => {
			socket.removeAllListeners();
			socket.close();
			if (this.socket !== socket) return;
			this.socket = null;
			this.onConnectFailure(err);
		});
		socket.on("disconnect", reason => {
			if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
			this.heartbeatTimer = null;
			for (const fail of [...this.pending]) fail(new TernError("The connection to Tern closed", "NOT_CONNECTED", 0, false));
			if (this.socket !== socket) return;
			this.socket = null;
			if (this.state === "draining" || this.state === "stopped") return;
			this.log.warn(`Disconnected from Tern (${reason}); reconnecting`);
			if (this.advisedDelay === null) this.nextUrl();
			this.setState("connecting");
			this.scheduleReconnect();
		});
		socket.on("task", (task: TaskPush) => this.emit("task", task, "socket"));
		socket.on("cancel", (message: CancelMessage) => this.emit("cancel", message));
		socket.on("reconnect", (message: { reason?: string; delayMs?: unknown }) => {
			const delay = typeof message?.delayMs === "number" && message.delayMs >= 0 ? Math.min(message.delayMs, 60_000) : 0;
			this.log.info(`Tern asks to reconnect (${message?.reason ?? "no reason given"}) in ${delay} ms`);
			this.advisedDelay = delay;
			this.nextUrl();
		});
		socket.on("error", (err: SocketErrorPayload) =>
			this.log.warn(`Tern reported an error${err?.event ? ` on '${err.event}'` : ""}: ${err?.message ?? String(err)}`)
		);
	}

	private onConnectFailure(err: Error & { data?: SocketErrorPayload }): void {
		const refusal = err.data;
		if (refusal?.type === "GATEWAY_BUSY") {
			// Not a failure of WebSockets: this gateway asks to be asked later; another may take us now.
			const retryAfter = Number((refusal.data as { retryAfterMs?: unknown } | undefined)?.retryAfterMs);
			this.advisedDelay = Number.isFinite(retryAfter) && retryAfter >= 0 ? Math.min(retryAfter, 60_000) : null;
			this.log.info(`${this.socketUrl} is busy: ${refusal.message}`);
			this.nextUrl();
		} else if (refusal?.type && AUTH_REFUSALS.has(refusal.type)) {
			// The server answered and said no: HTTP pull would be refused the same way.
			this.log.error(`Tern refused the connection: ${refusal.message} (${refusal.type}); retrying`);
		} else {
			this.failures++;
			const why = refusal?.message ?? (err as { description?: { message?: string } }).description?.message ?? err.message;
			this.log.warn(`Socket connection to ${this.socketUrl} failed (${this.failures}): ${why}`);
			this.nextUrl();
			// An HTTP answer instead of the upgrade: the server (or a proxy on the way) says no to
			// WebSockets here, and insisting will not change that. Pull at once.
			const answered = /Unexpected server response: (\d+)/.exec(why ?? "");
			const unavailable = answered !== null || (refusal !== undefined && [426, 501].includes(refusal.code));
			if (
				this.options.transport === "auto" &&
				this.state !== "pull" &&
				(unavailable || this.failures >= this.options.fallbackAfter)
			)
				this.enterPull(
					answered
						? `the WebSocket upgrade was answered with HTTP ${answered[1]}`
						: `the socket could not connect ${this.failures} time(s)`
				);
		}
		this.scheduleReconnect();
	}

	private scheduleReconnect(): void {
		if (this.reconnectTimer || this.state === "draining" || this.state === "stopped") return;
		// What a gateway asked for, with a little jitter, else the backoff.
		const advised = this.advisedDelay;
		this.advisedDelay = null;
		const delay = advised === null ? this.backoff.next() : Math.round(advised * (1 + Math.random() * 0.2));
		this.log.debug(`Next socket connection attempt in ${delay} ms (${this.socketUrl})`);
		this.reconnectTimer = setTimeout(() => this.connectSocket(), delay);
	}

	private closeSocket(): void {
		const socket = this.socket;
		this.socket = null;
		if (socket) {
			if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
			this.heartbeatTimer = null;
			socket.removeAllListeners("disconnect");
			socket.close();
			for (const fail of [...this.pending]) fail(new TernError("The connection to Tern closed", "NOT_CONNECTED", 0, false));
		}
	}

	private clearTimers(): void {
		if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
		if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
		this.reconnectTimer = this.heartbeatTimer = null;
	}

	private setState(state: ChannelState): void {
		if (this.state === state) return;
		if (this.state === "stopped") return;
		this.state = state;
		this.emit("state", state);
	}

	// ---------------------------------------------------------------- HTTP pull

	private enterPull(why: string): void {
		this.log.warn(`Falling back to HTTP pull from ${this.options.url} (${why}); the socket is retried in the background`);
		this.setState("pull");
		this.emit("ready");
		if (!this.pulling) void this.pullLoop();
	}

	private async pullLoop(): Promise<void> {
		this.pulling = true;
		const backoff = new Backoff({
			initialMs: this.options.pullIntervalMs,
			maxMs: Math.max(this.options.reconnectMaxMs, this.options.pullIntervalMs),
			jitter: 0.2
		});
		try {
			while (this.state === "pull") {
				let wait = this.options.pullIntervalMs;
				const free = Math.min(this.options.freeSlots(), 100);
				if (free > 0) {
					try {
						const reply = await this.rest.call<{ tasks: TaskPush[] }>(
							"GET",
							`/api/task/pull?terminalId=${encodeURIComponent(this.options.terminalId)}&limit=${free}`
						);
						backoff.reset();
						const tasks = reply?.tasks ?? [];
						if (tasks.length > 0) this.log.debug(`Pulled ${tasks.length} task(s)`);
						for (const task of tasks) this.emit("task", task, "pull");
						// A full batch: there may be more waiting.
						if (tasks.length === free) wait = 0;
					} catch (err) {
						wait = backoff.next();
						this.log.warn(`Pull failed: ${(err as Error).message}; next in ${wait} ms`);
					}
				}
				if (this.state !== "pull") break;
				if (wait > 0)
					await new Promise<void>(resolve => {
						const timer = setTimeout(resolve, wait);
						this.wakePull = () => {
							clearTimeout(timer);
							resolve();
						};
					});
				this.wakePull = null;
			}
		} finally {
			this.pulling = false;
		}
	}
}
