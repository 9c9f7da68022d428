/**
 * Every error Tern raises on purpose, each with a stable `type`. Across nodes, branch on
 * `err.type`, never on `instanceof`: errors are rebuilt from plain data on the far side.
 */
import Moleculer from "moleculer";
import type { SocketErrorPayload } from "./contracts.ts";

const { MoleculerClientError, MoleculerRetryableError } = Moleculer.Errors;

export const ErrorTypes = {
	VALIDATION: "VALIDATION_ERROR",
	BAD_REQUEST: "BAD_REQUEST",
	UNAUTHORIZED: "UNAUTHORIZED",
	INVALID_TOKEN: "INVALID_TOKEN",
	FORBIDDEN: "FORBIDDEN",
	BAD_CREDENTIALS: "BAD_CREDENTIALS",
	TASK_NOT_FOUND: "TASK_NOT_FOUND",
	JOB_NOT_FOUND: "JOB_NOT_FOUND",
	SCRIPT_NOT_FOUND: "SCRIPT_NOT_FOUND",
	TASK_NOT_YOURS: "TASK_NOT_YOURS",
	STALE_ATTEMPT: "STALE_ATTEMPT",
	TASK_FINISHED: "TASK_FINISHED",
	TASK_NOT_STARTED: "TASK_NOT_STARTED",
	PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
	TERMINAL_NOT_FOUND: "TERMINAL_NOT_FOUND",
	TERMINAL_EXISTS: "TERMINAL_EXISTS",
	TERMINAL_DISABLED: "TERMINAL_DISABLED",
	TERMINAL_NOT_CONNECTED: "TERMINAL_NOT_CONNECTED",
	NO_MATCHING_TERMINAL: "NO_MATCHING_TERMINAL",
	USER_EXISTS: "USER_EXISTS",
	USER_NOT_FOUND: "USER_NOT_FOUND",
	STATE_CONFLICT: "STATE_CONFLICT",
	UNSUPPORTED_MEDIA_TYPE: "UNSUPPORTED_MEDIA_TYPE",
	RESULT_TOO_LARGE: "RESULT_TOO_LARGE",
	IDEMPOTENCY_CONFLICT: "IDEMPOTENCY_CONFLICT",
	CONFIRMATION_INVALID: "CONFIRMATION_INVALID",
	CONFIRMATION_EXPIRED: "CONFIRMATION_EXPIRED",
	RULE_NOT_FOUND: "RULE_NOT_FOUND",
	RULE_EXISTS: "RULE_EXISTS",
	BUILTIN_RULE: "BUILTIN_RULE",
	CHANNEL_NOT_FOUND: "CHANNEL_NOT_FOUND",
	CHANNEL_EXISTS: "CHANNEL_EXISTS",
	CHANNEL_IN_USE: "CHANNEL_IN_USE",
	ALERT_NOT_FOUND: "ALERT_NOT_FOUND",
	SILENCE_NOT_FOUND: "SILENCE_NOT_FOUND",
	RATE_LIMITED: "RATE_LIMITED",
	TOKEN_NOT_FOUND: "TOKEN_NOT_FOUND",
	TOKEN_EXISTS: "TOKEN_EXISTS",
	USER_DISABLED: "USER_DISABLED",
	GATEWAY_BUSY: "GATEWAY_BUSY",
	STORAGE_DEGRADED: "STORAGE_DEGRADED"
} as const;
export type ErrorType = (typeof ErrorTypes)[keyof typeof ErrorTypes];

/** Longest text of the caller's own that an error repeats back. */
const MAX_ECHO = 120;

function clip(text: string): string {
	return text.length > MAX_ECHO ? `${text.slice(0, MAX_ECHO)}…` : text;
}

function formatBytes(bytes: number): string {
	return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`;
}

function client(message: string, code: number, type: ErrorType, data?: unknown) {
	return new MoleculerClientError(message, code, type, data);
}

export const Errors = {
	badRequest: (message: string, data?: unknown) => client(message, 400, ErrorTypes.BAD_REQUEST, data),
	validation: (message: string, data?: unknown) => client(message, 422, ErrorTypes.VALIDATION, data),
	unauthorized: (message = "Authentication required: send 'Authorization: Bearer <token>'") =>
		client(message, 401, ErrorTypes.UNAUTHORIZED),
	invalidToken: (reason: string) => client(`Invalid token: ${reason}`, 401, ErrorTypes.INVALID_TOKEN),
	forbidden: (message: string) => client(message, 403, ErrorTypes.FORBIDDEN),
	badCredentials: () => client("Wrong username or password", 401, ErrorTypes.BAD_CREDENTIALS),
	taskNotFound: (taskId: string) => client(`Task '${taskId}' not found`, 404, ErrorTypes.TASK_NOT_FOUND, { taskId }),
	scriptNotFound: (name: string, version?: number) =>
		client(
			version === undefined ? `Script '${name}' not found` : `Script '${name}' has no version ${version}`,
			404,
			ErrorTypes.SCRIPT_NOT_FOUND,
			{ name, version }
		),
	jobNotFound: (jobId: string) => client(`Job '${jobId}' not found`, 404, ErrorTypes.JOB_NOT_FOUND, { jobId }),
	taskNotYours: (taskId: string, terminalId: string) =>
		client(`Task '${taskId}' is not assigned to terminal '${terminalId}'`, 403, ErrorTypes.TASK_NOT_YOURS, {
			taskId,
			terminalId
		}),
	staleAttempt: (taskId: string, attempt: number, current: number) =>
		client(
			attempt < current
				? `Attempt ${attempt} of task '${taskId}' is superseded: the current attempt is ${current}`
				: `Attempt ${attempt} of task '${taskId}' was never made: the current attempt is ${current}`,
			409,
			ErrorTypes.STALE_ATTEMPT,
			{ taskId, attempt, current }
		),
	taskFinished: (taskId: string, status: string) =>
		client(`Task '${taskId}' is already ${status}`, 409, ErrorTypes.TASK_FINISHED, { taskId, status }),
	taskNotStarted: (taskId: string, status: string) =>
		client(`Task '${taskId}' is ${status}: it was not delivered to this terminal`, 409, ErrorTypes.TASK_NOT_STARTED, {
			taskId,
			status
		}),
	payloadTooLarge: (bytes: number, limit: number) =>
		client(`'payload' is ${bytes} bytes; the limit is ${limit} bytes`, 413, ErrorTypes.PAYLOAD_TOO_LARGE, {
			bytes,
			limit
		}),
	terminalNotFound: (terminalId: string) =>
		client(`Terminal '${terminalId}' not found`, 404, ErrorTypes.TERMINAL_NOT_FOUND, { terminalId }),
	terminalExists: (terminalId: string) =>
		client(`Terminal '${terminalId}' already exists`, 409, ErrorTypes.TERMINAL_EXISTS, { terminalId }),
	terminalDisabled: (terminalId: string) =>
		client(`Terminal '${terminalId}' is disabled`, 403, ErrorTypes.TERMINAL_DISABLED, { terminalId }),
	terminalNotConnected: (terminalId: string) =>
		new MoleculerRetryableError(`Terminal '${terminalId}' is not connected here`, 404, ErrorTypes.TERMINAL_NOT_CONNECTED, {
			terminalId
		}),
	noMatchingTerminal: (labels: unknown) =>
		client(
			`No registered terminal matches the selector's labels ${JSON.stringify(labels)}; send 'waitForTerminal: true' to queue the task until one does`,
			422,
			ErrorTypes.NO_MATCHING_TERMINAL,
			{ labels }
		),
	userExists: (username: string) => client(`User '${username}' already exists`, 409, ErrorTypes.USER_EXISTS, { username }),
	userNotFound: (id: number | string) => client(`User '${id}' not found`, 404, ErrorTypes.USER_NOT_FOUND, { id }),
	unsupportedMediaType: (given: string | undefined) =>
		client(
			`Send the body as JSON with 'Content-Type: application/json'${given ? `, not '${given}'` : ""}`,
			415,
			ErrorTypes.UNSUPPORTED_MEDIA_TYPE,
			{ contentType: given ?? null }
		),
	/** A value nested past the limit: named by the caller's field, never echoed back. */
	tooDeep: (field: string, limit: number) =>
		client(`${field ? `'${field}'` : "The body"} nests deeper than ${limit} levels`, 422, ErrorTypes.VALIDATION, [
			{
				type: "depth",
				field: field || "body",
				message: `${field ? `'${field}'` : "The body"} nests deeper than ${limit} levels`
			}
		]),
	/** The whole request body over the parser's limit (a task's payload has its own, smaller one). */
	bodyTooLarge: (limit: number) =>
		client(`The request body is larger than ${formatBytes(limit)}`, 413, ErrorTypes.PAYLOAD_TOO_LARGE, { limit }),
	/** A key that would reach an object's prototype once the body is merged into params. */
	prototypeKey: (field: string) =>
		client(`'${field}' is not an allowed key`, 422, ErrorTypes.VALIDATION, [
			{ type: "forbiddenKey", field, message: `'${field}' is not an allowed key` }
		]),
	/** A path segment or query text whose percent-encoding does not decode. */
	badEncoding: (where: "path" | "query", text: string) =>
		client(`The request ${where} has malformed percent-encoding: '${clip(text)}'`, 400, ErrorTypes.BAD_REQUEST, {
			[where]: clip(text)
		}),
	resultTooLarge: (taskId: string, bytes: number, limit: number) =>
		client(
			`The result of task '${taskId}' is ${bytes} bytes; the limit is ${limit} bytes`,
			413,
			ErrorTypes.RESULT_TOO_LARGE,
			{
				taskId,
				bytes,
				limit
			}
		),
	idempotencyConflict: (key: string, taskId: string) =>
		client(
			`Idempotency key '${key}' was used for task '${taskId}' with a different body`,
			409,
			ErrorTypes.IDEMPOTENCY_CONFLICT,
			{ idempotencyKey: key, taskId }
		),
	/** A second confirmation malformed, signed by another key, or made for another action, object or caller. */
	confirmationInvalid: (reason: string, action: string, object: string) =>
		client(
			`The confirmation token is not valid for this call: ${reason}. Repeat the call without X-Confirm for a new one`,
			412,
			ErrorTypes.CONFIRMATION_INVALID,
			{ action, object }
		),
	confirmationExpired: (action: string, object: string, expiredAt: number) =>
		client(
			"The confirmation token has expired. Repeat the call without X-Confirm for a new one",
			412,
			ErrorTypes.CONFIRMATION_EXPIRED,
			{ action, object, expiredAt: new Date(expiredAt).toISOString() }
		),
	ruleNotFound: (ruleId: string) => client(`Alert rule '${ruleId}' not found`, 404, ErrorTypes.RULE_NOT_FOUND, { ruleId }),
	ruleExists: (name: string) => client(`An alert rule named '${name}' already exists`, 409, ErrorTypes.RULE_EXISTS, { name }),
	/** A built-in rule may be disabled or tuned, not deleted, renamed or pointed at another signal. */
	builtinRule: (ruleId: string, what: string) =>
		client(`Alert rule '${ruleId}' is built in: ${what}; disable it instead`, 409, ErrorTypes.BUILTIN_RULE, { ruleId }),
	channelNotFound: (channelId: string) =>
		client(`Alert channel '${channelId}' not found`, 404, ErrorTypes.CHANNEL_NOT_FOUND, { channelId }),
	channelExists: (name: string) =>
		client(`An alert channel named '${name}' already exists`, 409, ErrorTypes.CHANNEL_EXISTS, { name }),
	channelInUse: (channelId: string, ruleIds: string[]) =>
		client(
			`Alert channel '${channelId}' is named by rule(s) ${ruleIds.map(id => `'${id}'`).join(", ")}: take it out of them first`,
			409,
			ErrorTypes.CHANNEL_IN_USE,
			{ channelId, ruleIds }
		),
	alertNotFound: (alertId: string) => client(`Alert '${alertId}' not found`, 404, ErrorTypes.ALERT_NOT_FOUND, { alertId }),
	alertResolved: (alertId: string) =>
		client(`Alert '${alertId}' is resolved: there is nothing to acknowledge`, 409, ErrorTypes.STATE_CONFLICT, { alertId }),
	silenceNotFound: (silenceId: string) =>
		client(`Silence '${silenceId}' not found`, 404, ErrorTypes.SILENCE_NOT_FOUND, { silenceId }),
	/** Too many calls (or failed logins): try again after `retryAfter` seconds (also sent as `Retry-After`). */
	rateLimited: (retryAfter: number, what = "requests") =>
		client(`Too many ${what}: try again in ${retryAfter} s`, 429, ErrorTypes.RATE_LIMITED, {
			retryAfter: Math.max(1, Math.ceil(retryAfter))
		}),
	tokenNotFound: (tokenId: string) => client(`API token '${tokenId}' not found`, 404, ErrorTypes.TOKEN_NOT_FOUND, { tokenId }),
	tokenExists: (name: string) =>
		client(`You already have an API token named '${name}'`, 409, ErrorTypes.TOKEN_EXISTS, { name }),
	/** A gateway admitting too many handshakes at once: the caller comes back after `retryAfterMs`. */
	/** `reason`: busy admitting a crowd of connections, or cut off from the cluster. */
	gatewayBusy: (retryAfterMs: number, reason: "busy" | "partition" = "busy") =>
		client(
			`The gateway is ${reason === "busy" ? "busy admitting connections" : "cut off from the cluster"}: try again in ${retryAfterMs} ms`,
			503,
			ErrorTypes.GATEWAY_BUSY,
			{ retryAfterMs, reason }
		),
	/** The database is unreachable: this waits for it (degraded mode keeps submits, pushes and results going). */
	storageDegraded: (what: string) =>
		client(`The database is unreachable, so ${what} waits until it is back`, 503, ErrorTypes.STORAGE_DEGRADED, { what }),
	userDisabled: (username: string) => client(`User '${username}' is disabled`, 403, ErrorTypes.USER_DISABLED, { username }),
	stateConflict: (taskId: string) =>
		new MoleculerRetryableError(`Task '${taskId}' changed while it was being updated`, 409, ErrorTypes.STATE_CONFLICT, {
			taskId
		})
};

interface ErrorLike {
	name?: string;
	message?: string;
	code?: unknown;
	type?: unknown;
	data?: unknown;
}

/** Moleculer's errors for a service that no node offers right now: transient in a cluster. */
export const TRANSIENT_TYPES: ReadonlySet<string> = new Set(["SERVICE_NOT_AVAILABLE", "SERVICE_NOT_FOUND"]);

/** Where an error was raised (node, action): ours to log, not the caller's to read. */
const INTERNAL_KEYS: ReadonlySet<string> = new Set(["nodeID", "action"]);
/** How deep error data is copied to a caller: Tern's own data is flat; anything deeper is not ours. */
const MAX_DATA_DEPTH = 4;
const MAX_DATA_ITEMS = 50;

/**
 * A copy of an error's data fit to send: internal names dropped, strings clipped, bounded in
 * depth and breadth, so that no value a caller sent (a validator's `actual`) is echoed at any size.
 */
function callerData(data: unknown, depth = 0): unknown {
	if (typeof data === "string") return clip(data);
	// JSON has no bigint (JSON.stringify throws on one), no function and no symbol.
	if (typeof data === "bigint") return String(data);
	if (typeof data === "function" || typeof data === "symbol") return undefined;
	if (data === null || typeof data !== "object") return data;
	if (depth >= MAX_DATA_DEPTH) return undefined;
	if (Array.isArray(data)) return data.slice(0, MAX_DATA_ITEMS).map(item => callerData(item, depth + 1));
	const out: Record<string, unknown> = {};
	for (const key of Object.keys(data).slice(0, MAX_DATA_ITEMS)) {
		if (INTERNAL_KEYS.has(key)) continue;
		const value = (data as Record<string, unknown>)[key];
		// The value a validator refused: repeated when it is a plain value, never when it is a structure.
		if ((key === "actual" || key === "expected") && value !== null && typeof value === "object") continue;
		const copy = callerData(value, depth + 1);
		if (copy !== undefined) out[key] = copy;
	}
	return out;
}

/** fastest-validator's list of unknown keys, each named by its full path; a long list is cut short. */
function unknownFields(parent: string | undefined, keys: string): string {
	const all = keys.split(", ");
	const named = all.slice(0, 10).map(f => `'${clip(parent ? `${parent}.${f}` : f)}'`);
	return all.length > named.length ? `${named.join(", ")} and ${all.length - named.length} more` : named.join(", ");
}

/**
 * One readable message for every error, the same on REST and on sockets. A validation error's
 * message names each offending field instead of the validator's generic sentence.
 */
export function toErrorPayload(err: unknown, event?: string): SocketErrorPayload {
	const e = (err ?? {}) as ErrorLike;
	const type = typeof e.type === "string" ? e.type : "INTERNAL_ERROR";
	// Moleculer's 404s for a service no node offers right now are transient in a cluster (a node is
	// starting, leaving or reconnecting): 503, so that clients try again rather than give up.
	const code = TRANSIENT_TYPES.has(type) ? 503 : typeof e.code === "number" ? e.code : 500;
	let message = e.message ?? "Internal error";
	// Moleculer names the action (an internal name) in these; the caller only needs to try again.
	if (TRANSIENT_TYPES.has(type)) message = "The service for this request is not available right now; try again";
	if (type === ErrorTypes.VALIDATION && Array.isArray(e.data) && e.data.length > 0) {
		message = (e.data as { type?: string; message?: string; field?: string; actual?: unknown; expected?: unknown }[])
			.map(item =>
				item.type === "objectStrict"
					? `Unknown field(s) ${unknownFields(item.field, String(item.actual))}; allowed: ${String(item.expected)}`
					: item.type === "enumValue"
						? // fastest-validator's own sentence shows the allowed values as if they were the value given.
							`The '${item.field}' field value '${clip(String(item.actual))}' is not one of the allowed values: ${String(item.expected)}`
						: item.message
			)
			.filter(Boolean)
			.join("; ");
	}
	const payload: SocketErrorPayload = { name: e.name ?? "Error", message, code, type, data: callerData(e.data) };
	if (event) payload.event = event;
	return payload;
}

/** The error a payload describes, rebuilt (an answer relayed from another node as data). */
export function fromErrorPayload(payload: SocketErrorPayload): Error {
	const err = new MoleculerClientError(payload.message, payload.code, payload.type, payload.data);
	err.name = payload.name;
	return err;
}
