/** Event payloads and the socket event maps: what crosses the broker as announcements, and the sockets. */
import type {
	AckParams,
	Presence,
	ProgressParams,
	ReconnectAdvice,
	ResultParams,
	SocketErrorPayload,
	TaskPush,
	TaskStatus
} from "./core.ts";

// ---- Event payloads (Moleculer events are announcements, not a queue) ----

/** A fire ledger row's outcome (`CLAIMED` until the fire settles). */
export const FIRE_OUTCOMES = ["CLAIMED", "FIRED", "CAUGHT_UP", "SKIPPED_OVERLAP", "MISSED", "NO_TERMINAL", "PAUSED"] as const;
export type FireOutcome = (typeof FIRE_OUTCOMES)[number];

/** `terminal.connected` */
export type TerminalConnectedEvent = Presence;

/** `terminal.disconnected` */
export interface TerminalDisconnectedEvent {
	terminalId: string;
	nodeID: string;
	sessionId: string;
	lastActiveAt: number;
}

/** `terminal.active`: batched activity, sent by each gateway every few seconds. */
export interface TerminalActiveEvent {
	items: { terminalId: string; lastActiveAt: number }[];
}

/**
 * `terminal.revoked`: gateways close its sessions. Disabled, key rotated or deleted: its token no
 * longer works. Drained: its running tasks have ended; it may connect again but gets no work.
 */
export interface TerminalRevokedEvent {
	terminalId: string;
	reason: "disabled" | "key-rotated" | "deleted" | "drained";
}

/** `terminal.updated`: registry data changed; replicas drop what they cached. */
export interface TerminalUpdatedEvent {
	terminalId: string;
}

/** One durable state change of a task, announced after the write (inside `task.statuses`). */
export interface TaskStatusEvent {
	taskId: string;
	status: TaskStatus;
	attempt: number;
	terminalId: string | null;
	at: string;
	data?: unknown;
	error?: string | null;
	exitCode?: number | null;
	retry?: number;
	/** True on a task's first event, the one its submit wrote (PENDING, or DELIVERED when pushed at once). */
	submitted?: true;
	/** On COMPLETED, FAILED and TIMEOUT: how long each phase took, ms (the status page's latency). */
	phases?: { queue?: number; start?: number; run?: number; total?: number };
}

/**
 * `task.statuses`: the state changes the dispatcher wrote in one turn (or a few milliseconds when
 * busy), in the order written: one event for a batch rather than one per change. Listeners
 * handle each change as if it came alone.
 */
export interface TaskStatusesEvent {
	events: TaskStatusEvent[];
}

/** `task.progress` */
export interface TaskProgressEvent {
	taskId: string;
	attempt: number;
	percent?: number;
	log?: string;
	stream?: "stdout" | "stderr";
	at: string;
}

// ---- Socket event maps (socket.io generics; the raw WebSocket uses the same payloads) ----

export interface TerminalServerToClient {
	task: (task: TaskPush) => void;
	cancel: (msg: { taskId: string; reason?: string }) => void;
	error: (err: SocketErrorPayload) => void;
	reconnect: (msg: ReconnectAdvice) => void;
}

export type SocketReply = (reply: { ok: true; [key: string]: unknown } | { ok: false; error: SocketErrorPayload }) => void;

export interface TerminalClientToServer {
	heartbeat: (reply?: SocketReply) => void;
	ack: (msg: AckParams, reply?: SocketReply) => void;
	progress: (msg: ProgressParams, reply?: SocketReply) => void;
	result: (msg: ResultParams, reply?: SocketReply) => void;
}

export interface ClientServerToClient {
	status: (msg: TaskStatusEvent) => void;
	progress: (msg: TaskProgressEvent) => void;
	error: (err: SocketErrorPayload) => void;
	/** To watchers (`watch`): every task change, batched. */
	statuses: (msg: WatchStatusesEvent) => void;
	/** To watchers: a terminal came online or went offline. */
	terminal: (msg: WatchTerminalEvent) => void;
	/** To watchers: an alert fired, resolved or was acknowledged. */
	alert: (msg: WatchAlertEvent) => void;
}

export interface ClientClientToServer {
	subscribe: (msg: { taskId: string }, reply?: SocketReply) => void;
	unsubscribe: (msg: { taskId: string }, reply?: SocketReply) => void;
	/** Every change, for dashboards: `statuses`, `terminal` and `alert` events until `unwatch`. */
	watch: (msg: Record<string, never>, reply?: SocketReply) => void;
	unwatch: (msg: Record<string, never>, reply?: SocketReply) => void;
}

/**
 * The changes of the last ~250 ms, oldest first. A watcher is sent at most a few hundred per
 * batch; `dropped` counts what was left out (the counts on `/api/system/status` stay exact).
 */
export interface WatchStatusesEvent {
	events: TaskStatusEvent[];
	dropped: number;
}

export interface WatchTerminalEvent {
	terminalId: string;
	status: "online" | "offline";
	at: string;
}

/** `alert.changed`: an alert fired, resolved or was acknowledged (announced by the writer). */
export type AlertChangedEvent = WatchAlertEvent;

export interface WatchAlertEvent {
	id: string;
	ruleId: string;
	status: "firing" | "resolved" | "acknowledged";
	severity: string;
	summary: string;
	at: string;
}

/** `job.fire`: one per ledger row written with an outcome. */
export interface FireEvent {
	jobId: string;
	fireTime: string;
	outcome: FireOutcome;
	taskIds: string[];
	manual: boolean;
	/** firedAt - fireTime, ms, when a task was created. */
	lateness: number | null;
	node: string;
	detail: string | null;
}
