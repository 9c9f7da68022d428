/**
 * The contracts every service and adapter shares: task states, task bodies and views,
 * principals, event payloads and the socket event maps. Producers and consumers import
 * these types from here so that a change to the wire format is a change in one place.
 */

export const TASK_STATUSES = [
	"PENDING",
	"DELIVERED",
	"PROCESSING",
	"COMPLETED",
	"FAILED",
	"TIMEOUT",
	"CANCELLED",
	"EXPIRED"
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** States a task never leaves. */
export const FINAL_STATUSES: ReadonlySet<TaskStatus> = new Set(["COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "EXPIRED"]);

export const STRATEGIES = ["round_robin", "random", "least_busy", "consistent_hash", "broadcast", "sharding"] as const;
export type StrategyName = (typeof STRATEGIES)[number];

/** Labels are a string map; `["gpu"]` is accepted as shorthand for `{ gpu: "true" }`. */
export type Labels = Record<string, string>;

export interface Selector {
	labels?: Labels | string[];
	strategy?: StrategyName;
	/** Routing key for `consistent_hash`. */
	key?: string;
}

export interface Backoff {
	type: "fixed" | "exponential";
	/** Base delay in milliseconds. */
	delay: number;
	/** 0..1: fraction of the delay added or removed at random. */
	jitter?: number;
}

/** The body of `POST /api/task/submit` (and of a job's task). */
export interface TaskBody {
	terminalId?: string;
	selector?: Selector;
	type: string;
	payload?: unknown;
	priority?: number;
	timeout?: number;
	ackTimeout?: number;
	ttl?: number;
	maxRetries?: number;
	backoff?: Backoff;
	idempotencyKey?: string;
	/** A selector that matches no registered terminal waits for one (up to its ttl) instead of being refused. */
	waitForTerminal?: boolean;
}

export interface SubmitResult {
	taskId: string;
	/** Every task created by `broadcast` and `sharding` (one per target, even when only one matched). */
	taskIds?: string[];
	/** The group of a `broadcast` or `sharding` submit's tasks. */
	groupId?: string;
	/** True when the idempotency key matched an earlier submit. */
	duplicate?: boolean;
}

/** What a terminal receives: the `task` socket event, the `task` WebSocket message, a pulled task. */
export interface TaskPush {
	taskId: string;
	attempt: number;
	type: string;
	payload: unknown;
	priority: number;
	timeout: number;
	ackTimeout: number;
	createdAt: string;
	shardIndex?: number;
	shardTotal?: number;
}

/** The reply of `GET /api/task/query`. */
export interface TaskQueryView {
	taskId: string;
	status: TaskStatus;
	data: unknown;
	error: string | null;
	exitCode: number | null;
	attempt: number;
	progress: number | null;
	createdAt: string;
	updatedAt: string;
	deliveredAt: string | null;
	startedAt: string | null;
	finishedAt: string | null;
}

/** The reply of `GET /api/tasks/:id` and the rows of `GET /api/tasks`. */
export interface TaskView extends TaskQueryView {
	terminalId: string | null;
	selector: Selector | null;
	type: string;
	payload: unknown;
	priority: number;
	timeout: number;
	ackTimeout: number;
	ttl: number;
	maxRetries: number;
	retries: number;
	backoff: Backoff | null;
	idempotencyKey: string | null;
	groupId: string | null;
	shardIndex: number | null;
	shardTotal: number | null;
	expiresAt: string | null;
	notBefore: string | null;
	deadlineAt: string | null;
}

export type ResultStatus = "success" | "failed";

export interface AckParams {
	taskId: string;
	attempt: number;
}

export interface ProgressParams {
	taskId: string;
	attempt: number;
	percent?: number;
	/** Output since the last progress message; kept (bounded) and relayed to followers. */
	log?: string;
	stream?: "stdout" | "stderr";
}

/** A stored line of a task's output (`GET /api/tasks/:id/logs`). */
export interface TaskLogLine {
	seq: number;
	attempt: number;
	stream: "stdout" | "stderr";
	text: string;
	at: string;
}

export interface ResultParams {
	taskId: string;
	attempt: number;
	status: ResultStatus;
	output?: unknown;
	error?: string;
	exitCode?: number;
}

export type Role = "admin" | "operator" | "viewer";

export interface UserPrincipal {
	kind: "user";
	userId: number;
	username: string;
	role: Role;
}

export interface TerminalPrincipal {
	kind: "terminal";
	terminalId: string;
}

export type Principal = UserPrincipal | TerminalPrincipal;

/** `ctx.meta` as the api and the gateway set it. */
export interface TernMeta {
	principal?: Principal;
	$statusCode?: number;
	/** The created resource of a 201 (moleculer-web warns on a 201 without one). */
	$location?: string;
	/** The `X-Confirm` header: the token of a second confirmation (see lib/confirm.ts). */
	confirm?: string;
}

export type TerminalStatus = "online" | "offline" | "disabled";

/** How a terminal is connected: socket.io, raw WebSocket, or HTTP pull. */
export type TerminalTransport = "socketio" | "ws" | "pull";

export interface TerminalView {
	id: string;
	name: string | null;
	status: TerminalStatus;
	labels: Labels;
	concurrency: number;
	enabled: boolean;
	lastActiveAt: string | null;
	connectedAt: string | null;
	nodeID: string | null;
	createdAt: string;
	/** Gets no new work; disconnected once its running tasks have ended. `status` is unchanged. */
	draining: boolean;
	/** null when offline. */
	transport: TerminalTransport | null;
	/** Task types its session takes; null: any type, or offline. */
	capabilities: string[] | null;
	/** Tasks it holds (DELIVERED, PROCESSING). */
	running: number;
	/** Tasks waiting for it (PENDING). */
	queued: number;
}

/** What the registry knows of a terminal, as the gateway and the dispatcher need it. */
export interface TerminalRecord {
	id: string;
	labels: Labels;
	concurrency: number;
	enabled: boolean;
	keyVersion: number;
	/** Takes no new work (but stays registered and may stay connected). */
	draining: boolean;
}

/** One live terminal connection, as the cache holds it. */
export interface Presence {
	terminalId: string;
	nodeID: string;
	sessionId: string;
	concurrency: number;
	labels: Labels;
	/** Task types it takes (its runners); absent: any type. */
	capabilities?: string[];
	connectedAt: number;
	lastActiveAt: number;
	/** The session's transport, as its gateway names it ("socket.io"/"websocket" or the view's names). */
	transport?: string;
}

// ---- Between the gateway and the dispatcher ----

/** One `ack` or `result` of a terminal, as the gateway batches them into `dispatcher.replies`. */
export type TerminalReply =
	({ kind: "ack"; terminalId: string } & AckParams) | ({ kind: "result"; terminalId: string } & ResultParams);

/** `dispatcher.replies`: the replies of one event-loop turn of a gateway, for one dispatcher node. */
export interface RepliesParams {
	replies: TerminalReply[];
}

/** The answer to one reply of `dispatcher.replies` (same order): what `dispatcher.ack`/`result` return, or why not. */
export type ReplyAnswer = { ok: Record<string, unknown> } | { error: SocketErrorPayload };

/** One push of `gateway.pushMany`; `sessionId`, when given, must be the live session's. */
export type GatewayPush = { terminalId: string; sessionId?: string } & (
	| { event: "task"; data: TaskPush }
	| { event: "cancel"; data: { taskId: string; attempt?: number; reason?: string } }
	| { event: "reconnect"; data: { reason: string } }
);

/** `gateway.pushMany` → one boolean per push, same order: true = sent, false = not connected here. */
export interface PushManyParams {
	pushes: GatewayPush[];
}

// ---- Event payloads (Moleculer events are announcements; see style.md) ----

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

export interface SocketErrorPayload {
	name: string;
	message: string;
	code: number;
	type: string;
	data?: unknown;
	/** The inbound event that caused the error. */
	event?: string;
}

export interface TerminalServerToClient {
	task: (task: TaskPush) => void;
	cancel: (msg: { taskId: string; reason?: string }) => void;
	error: (err: SocketErrorPayload) => void;
	reconnect: (msg: { reason: string }) => void;
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
}

export interface ClientClientToServer {
	subscribe: (msg: { taskId: string }, reply?: SocketReply) => void;
	unsubscribe: (msg: { taskId: string }, reply?: SocketReply) => void;
}

// ---- Terminal fleet ----

/** `terminals.touch`: a terminal showed it is alive without a session (an HTTP pull). */
export interface TerminalTouchParams {
	id: string;
	transport: "pull";
}

/** `PATCH /api/terminals/:id` */
export interface TerminalPatch {
	name?: string | null;
	labels?: Labels | string[];
	concurrency?: number;
}

/** `DELETE /api/terminals/:id`, once confirmed: the pinned tasks it left behind were cancelled. */
export interface TerminalDeleted {
	id: string;
	deleted: true;
	tasks: { cancelled: number };
}

/** The 202 of a destructive call made without `X-Confirm`: repeat it with the token to execute. */
export interface ConfirmationChallenge {
	confirm: {
		token: string;
		/** ISO-8601. */
		expiresAt: string;
		action: string;
		summary: string;
	};
}

export interface ConfirmRequest {
	action: string;
	object: string;
	/** What will happen, in a sentence a person reads before confirming. */
	summary: string;
}

/** `auth.checkConfirmation` params: the token is checked against the caller in `ctx.meta`. */
export interface CheckConfirmationParams {
	token: string;
	action: string;
	object: string;
}

/** What every view of a job shows at least (`GET /api/jobs/:id`, the REPL's `jobs`). */
export interface JobSummary {
	id: string;
	name: string;
	schedule: unknown;
	status: string;
	nextFireTimes: string[];
}
