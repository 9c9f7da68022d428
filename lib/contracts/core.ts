/** Tasks, principals, terminals, and what the gateway and the dispatcher say to each other. */

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
	/** Values only the terminal that runs the task sees (`task.secrets`); stored sealed, shown as "***". */
	secrets?: Record<string, string>;
	/** Dotted paths into `payload` (`env.TOKEN`) whose values are secret: stored sealed, shown as "***". */
	sensitive?: string[];
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
	/** The task's secrets in plaintext (its payload carries its sensitive values too): sent to this terminal only. */
	secrets?: Record<string, string>;
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
	/** The names of the task's secrets, each value "***". */
	secrets?: Record<string, string>;
	/** The payload's sensitive paths (their values are "***" in `payload`). */
	sensitive?: string[];
	/** Who submitted it (a username; null for a scheduler fire or an older row). */
	createdBy: string | null;
	/** Every state change, oldest first (`GET /api/tasks/:id` only). */
	history?: TaskTransition[];
}

/** One state change of a task, as `GET /api/tasks/:id` lists them. */
export interface TaskTransition {
	status: TaskStatus;
	attempt: number;
	/** ISO-8601. */
	at: string;
	terminalId: string | null;
	/** Why, when the change was not the terminal's own answer (a timeout, a retry, a cancel). */
	reason?: string;
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
	/** The token's id (`jti`) and expiry (s since the epoch): logout revokes exactly this token. */
	jti?: string;
	exp?: number;
	/** Set when the caller used a long-lived API token (`/api/tokens`) of this user. */
	apiToken?: { id: string; name: string; scope: "read" | "submit" | "admin" };
}

export interface TerminalPrincipal {
	kind: "terminal";
	terminalId: string;
	/** The credential's id (`jti`) and expiry (s since the epoch), as for users. */
	jti?: string;
	exp?: number;
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
	/** Where the call came from, for the audit log: set by the api and the gateway. */
	client?: ClientInfo;
}

/** The far end of a REST request or socket. */
export interface ClientInfo {
	address: string | null;
	userAgent: string | null;
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
	/** The key version before the last rotation, still accepted until `previousKeyUntil` (ms): the grace period. */
	previousKeyVersion?: number | null;
	previousKeyUntil?: number | null;
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
	| { event: "reconnect"; data: ReconnectAdvice }
);

/** Told to a terminal before its gateway lets it go: come back (to any gateway) after `delayMs`. */
export interface ReconnectAdvice {
	reason: string;
	/** How long to wait first, ms: spread at random so that a crowd does not come back at once. */
	delayMs?: number;
}

/** `gateway.pushMany` → one boolean per push, same order: true = sent, false = not connected here. */
export interface PushManyParams {
	pushes: GatewayPush[];
}

export interface SocketErrorPayload {
	name: string;
	message: string;
	code: number;
	type: string;
	data?: unknown;
	/** The inbound event that caused the error. */
	event?: string;
}
