/**
 * The console's live channel: one socket.io connection to `/client` with the session's token.
 * It reconnects by itself (socket.io's backoff) and says so: `live.state` is what the shell's
 * banner shows. Pages subscribe through `onStatuses`, `onTerminal`, `onAlert` (all changes, from
 * `watch`) or `follow(taskId)` (one task's status and logs).
 */
import { reactive } from "vue";
import { io, type Socket } from "socket.io-client";
import type {
	ClientClientToServer,
	ClientServerToClient,
	TaskProgressEvent,
	TaskStatusEvent,
	WatchAlertEvent,
	WatchStatusesEvent,
	WatchTerminalEvent
} from "../api/types.ts";

type ClientSocket = Socket<ClientServerToClient, ClientClientToServer>;

export type LiveState = "offline" | "connecting" | "live" | "lost";

export const live = reactive({
	state: "offline" as LiveState,
	/** When the connection was last lost (ms), for the banner. */
	lostAt: 0,
	reconnects: 0
});

let socket: ClientSocket | null = null;
const listeners = {
	statuses: new Set<(msg: WatchStatusesEvent) => void>(),
	terminal: new Set<(msg: WatchTerminalEvent) => void>(),
	alert: new Set<(msg: WatchAlertEvent) => void>(),
	reconnected: new Set<() => void>()
};
const followed = new Map<string, { status: Set<(e: TaskStatusEvent) => void>; progress: Set<(e: TaskProgressEvent) => void> }>();

function resubscribe(s: ClientSocket): void {
	s.emit("watch", {});
	for (const taskId of followed.keys()) s.emit("subscribe", { taskId });
}

/** Opens the channel for `token` (a user's); closes any previous one. */
export function connectLive(token: string): void {
	disconnectLive();
	live.state = "connecting";
	const s: ClientSocket = io("/client", { auth: { token }, transports: ["websocket", "polling"] });
	socket = s;
	let everConnected = false;
	s.on("connect", () => {
		live.state = "live";
		resubscribe(s);
		if (everConnected) {
			live.reconnects++;
			for (const fn of listeners.reconnected) fn();
		}
		everConnected = true;
	});
	s.on("disconnect", reason => {
		if (socket !== s) return;
		live.state = "lost";
		live.lostAt = Date.now();
		// socket.io does not come back by itself when the server closed the socket (a gateway
		// shutting down, a restart): try again after a jittered second or two.
		if (reason === "io server disconnect") setTimeout(() => socket === s && s.connect(), 1000 + Math.random() * 1000);
	});
	s.on("connect_error", () => {
		if (socket !== s) return;
		live.state = everConnected ? "lost" : "connecting";
		if (!live.lostAt) live.lostAt = Date.now();
	});
	s.on("statuses", msg => {
		for (const fn of listeners.statuses) fn(msg);
		for (const event of msg.events) for (const fn of followed.get(event.taskId)?.status ?? []) fn(event);
	});
	s.on("terminal", msg => listeners.terminal.forEach(fn => fn(msg)));
	s.on("alert", msg => listeners.alert.forEach(fn => fn(msg)));
	s.on("status", event => followed.get(event.taskId)?.status.forEach(fn => fn(event)));
	s.on("progress", event => followed.get(event.taskId)?.progress.forEach(fn => fn(event)));
}

export function disconnectLive(): void {
	socket?.disconnect();
	socket = null;
	live.state = "offline";
	live.lostAt = 0;
}

function add<T>(set: Set<T>, fn: T): () => void {
	set.add(fn);
	return () => set.delete(fn);
}

/** Every task change (batched); returns the unsubscribe. */
export const onStatuses = (fn: (msg: WatchStatusesEvent) => void) => add(listeners.statuses, fn);
export const onTerminal = (fn: (msg: WatchTerminalEvent) => void) => add(listeners.terminal, fn);
export const onAlert = (fn: (msg: WatchAlertEvent) => void) => add(listeners.alert, fn);
/** After the channel came back: pages reload what they may have missed. */
export const onReconnected = (fn: () => void) => add(listeners.reconnected, fn);

/** One task's status changes and logs; returns the unsubscribe. */
export function follow(
	taskId: string,
	handlers: { status?: (e: TaskStatusEvent) => void; progress?: (e: TaskProgressEvent) => void }
): () => void {
	let entry = followed.get(taskId);
	if (!entry) {
		followed.set(taskId, (entry = { status: new Set(), progress: new Set() }));
		socket?.emit("subscribe", { taskId });
	}
	const e = entry;
	if (handlers.status) e.status.add(handlers.status);
	if (handlers.progress) e.progress.add(handlers.progress);
	return () => {
		if (handlers.status) e.status.delete(handlers.status);
		if (handlers.progress) e.progress.delete(handlers.progress);
		if (e.status.size === 0 && e.progress.size === 0) {
			followed.delete(taskId);
			socket?.emit("unsubscribe", { taskId });
		}
	};
}
