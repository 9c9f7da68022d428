/**
 * The alarm page as a terminal: its credentials (kept in localStorage, so a reload reconnects
 * as the same terminal), its socket.io connection to `/terminal` with heartbeats, and the
 * protocol — ack on display, one result per (task, attempt), duplicates of a push ignored.
 */
import { reactive } from "vue";
import { io, type Socket } from "socket.io-client";
import type { TaskPush, TerminalClientToServer, TerminalServerToClient } from "../../api/types.ts";

const STORAGE_KEY = "tern.alarm";
const HEARTBEAT_MS = 30_000;

export interface Credentials {
	terminalId: string;
	token: string;
}

type TerminalSocket = Socket<TerminalServerToClient, TerminalClientToServer>;

export const link = reactive({
	state: "offline" as "offline" | "connecting" | "online" | "lost",
	error: "",
	terminalId: ""
});

export function savedCredentials(): Credentials | null {
	try {
		const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "null") as Credentials | null;
		return saved && typeof saved.token === "string" && typeof saved.terminalId === "string" ? saved : null;
	} catch {
		return null;
	}
}

export function saveCredentials(credentials: Credentials | null): void {
	if (credentials) localStorage.setItem(STORAGE_KEY, JSON.stringify(credentials));
	else localStorage.removeItem(STORAGE_KEY);
}

/** The terminal id a terminal token names (its subject). */
export function terminalIdOf(token: string): string | null {
	try {
		const claims = JSON.parse(atob((token.split(".")[1] ?? "").replace(/-/g, "+").replace(/_/g, "/"))) as {
			sub?: unknown;
			kind?: unknown;
		};
		return typeof claims.sub === "string" && claims.kind === "terminal" ? claims.sub : null;
	} catch {
		return null;
	}
}

export interface Handlers {
	task(task: TaskPush): void;
	cancel(taskId: string): void;
}

export class AlarmTerminal {
	private socket: TerminalSocket | null = null;
	private heartbeat: ReturnType<typeof setInterval> | undefined;
	private readonly seen = new Set<string>();

	connect(credentials: Credentials, handlers: Handlers): void {
		this.close();
		link.terminalId = credentials.terminalId;
		link.state = "connecting";
		link.error = "";
		const socket: TerminalSocket = io("/terminal", {
			auth: { token: credentials.token, concurrency: 5 },
			transports: ["websocket", "polling"],
			reconnectionDelay: 1000,
			reconnectionDelayMax: 10_000
		});
		this.socket = socket;
		socket.on("connect", () => {
			link.state = "online";
			link.error = "";
		});
		socket.on("disconnect", () => (link.state = "lost"));
		socket.on("connect_error", err => {
			link.state = link.state === "online" || link.state === "lost" ? "lost" : "connecting";
			link.error = err.message;
		});
		socket.on("error", err => (link.error = err.message));
		socket.on("task", task => {
			const key = `${task.taskId}:${task.attempt}`;
			// A push seen before (a redelivery after a reconnect) is acknowledged again, shown once.
			this.ack(task);
			if (this.seen.has(key)) return;
			this.seen.add(key);
			if (this.seen.size > 500) this.seen.delete(this.seen.values().next().value!);
			handlers.task(task);
		});
		socket.on("cancel", msg => handlers.cancel(msg.taskId));
		this.heartbeat = setInterval(() => socket.connected && socket.emit("heartbeat"), HEARTBEAT_MS);
	}

	private ack(task: TaskPush): void {
		this.socket?.emit("ack", { taskId: task.taskId, attempt: task.attempt });
	}

	result(task: TaskPush, status: "success" | "failed", output: unknown, error?: string): void {
		this.socket?.emit("result", {
			taskId: task.taskId,
			attempt: task.attempt,
			status,
			output,
			...(error ? { error } : {})
		});
	}

	close(): void {
		clearInterval(this.heartbeat);
		this.socket?.disconnect();
		this.socket = null;
		link.state = "offline";
	}
}
