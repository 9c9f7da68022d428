/**
 * What a terminal sends, checked before anything walks it, and what it is told back. Every
 * message is refused here when it nests past MAX_JSON_DEPTH, so that no recursive walk after it
 * (the validator, JSON encoding for the transporter or the database, a logger) meets unbounded
 * input; every error it is told names the caller's fields, never the cluster's internals.
 */
import type { ResultStatus, SocketErrorPayload, TerminalReply } from "../../lib/contracts.ts";
import { MAX_JSON_DEPTH, deepField, prototypeKey, textDepth } from "../../lib/bounded.ts";
import { ErrorTypes, Errors, toErrorPayload } from "../../lib/errors.ts";
import { refuseNul } from "../../lib/http/body.ts";

/** The messages a terminal may send. */
export const INBOUND: ReadonlySet<string> = new Set(["heartbeat", "ack", "progress", "result"]);

/**
 * Refuses socket.io event arguments nested past the limit, naming the outermost field that does,
 * a NUL character in any key or string (outside `payload` and `output`) and a prototype key,
 * naming its field.
 */
export function checkDepth(args: readonly unknown[]): void {
	for (const arg of args) {
		const field = deepField(arg, MAX_JSON_DEPTH);
		if (field !== null) throw Errors.tooDeep(field, MAX_JSON_DEPTH);
		checkKeys(arg);
	}
}

/** Refuses a NUL character in a key or a string, and a key aimed at a prototype or at text conversion. */
function checkKeys(message: unknown): void {
	refuseNul(message, "message");
	const key = prototypeKey(message);
	if (key !== null) throw Errors.prototypeKey(key);
}

/** The fields each message a terminal sends may carry (`type` is the raw WebSocket's envelope). */
const FIELDS: Readonly<Record<"ack" | "result", ReadonlySet<string>>> = {
	ack: new Set(["type", "taskId", "attempt", "terminalId"]),
	result: new Set(["type", "taskId", "attempt", "terminalId", "status", "output", "error", "exitCode"])
};

/** Refuses a field the message does not take, naming it: a typo is an error, not a silent drop. */
function refuseUnknown(kind: "ack" | "result", message: Record<string, unknown>): void {
	const unknown = Object.keys(message).filter(key => !FIELDS[kind].has(key));
	if (unknown.length === 0) return;
	const items = unknown.slice(0, 8).map(key => {
		const field = key.slice(0, 64);
		return { type: "unknownField", field, message: `'${field}' is not a field of '${kind}'` };
	});
	throw Errors.validation(items.map(i => i.message).join("; "), items);
}

/** A raw WebSocket message, parsed, or why not (with the message's `type` when it could be read). */
export type ParsedMessage =
	{ ok: true; type: string; message: Record<string, unknown> } | { ok: false; error: Error; event?: string };

/** Parses a raw WebSocket text; its depth is read from the text before the parser sees it. */
export function parseMessage(text: string): ParsedMessage {
	if (textDepth(text) > MAX_JSON_DEPTH) {
		const { field, type } = scanTooDeep(text, MAX_JSON_DEPTH);
		return { ok: false, error: Errors.tooDeep(field, MAX_JSON_DEPTH), ...(type ? { event: type } : {}) };
	}
	let message: unknown;
	try {
		message = JSON.parse(text);
	} catch {
		return { ok: false, error: Errors.badRequest("The message is not valid JSON") };
	}
	const type = (message as { type?: unknown } | null)?.type;
	if (typeof message !== "object" || message === null || Array.isArray(message) || typeof type !== "string")
		return { ok: false, error: Errors.badRequest("The message has no 'type'") };
	try {
		checkKeys(message);
	} catch (err) {
		return { ok: false, error: err as Error, event: type.slice(0, 64) };
	}
	return { ok: true, type, message: message as Record<string, unknown> };
}

/** The index of the closing quote of the JSON string literal that opens at `start`. */
function stringEnd(text: string, start: number): number {
	let i = start + 1;
	while (i < text.length && text.charCodeAt(i) !== 34 /* " */) i += text.charCodeAt(i) === 92 /* \ */ ? 2 : 1;
	return i;
}

/** A JSON string literal's value; its raw text when it is not a valid literal. */
function decodeString(literal: string): string {
	try {
		return JSON.parse(literal) as string;
	} catch {
		return literal.slice(1, -1);
	}
}

/**
 * For a text too deep to parse: the top-level key under which it nests past `maxDepth` ("" when
 * the root is not an object) and the top-level `type`, read in one pass without building the value.
 */
export function scanTooDeep(text: string, maxDepth: number): { field: string; type?: string } {
	let depth = 0;
	let rootIsObject = false;
	let expectKey = false;
	let key = "";
	let field: string | null = null;
	let type: string | undefined;
	for (let i = 0; i < text.length; i++) {
		const c = text.charCodeAt(i);
		if (c === 34 /* " */) {
			const end = stringEnd(text, i);
			// Only the top-level object's keys and its `type` are decoded.
			if (depth === 1 && expectKey) key = decodeString(text.slice(i, end + 1));
			else if (depth === 1 && key === "type" && type === undefined)
				type = decodeString(text.slice(i, Math.min(end + 1, i + 66)));
			i = end;
		} else if (c === 123 /* { */ || c === 91 /* [ */) {
			depth++;
			if (depth === 1) rootIsObject = expectKey = c === 123;
			if (depth > maxDepth && field === null) field = rootIsObject ? key : "";
		} else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
		else if (depth === 1 && c === 58 /* : */) expectKey = false;
		else if (depth === 1 && c === 44 /* , */) expectKey = rootIsObject;
	}
	return { field: field ?? "", ...(type !== undefined ? { type } : {}) };
}

/** The dispatcher's reply of an `ack` or `result` message (the fields it takes), for this terminal. */
export function toReply(terminalId: string, kind: "ack" | "result", data: unknown): TerminalReply {
	if (typeof data !== "object" || data === null || Array.isArray(data))
		throw Errors.badRequest(`'${kind}' needs an object with taskId and attempt`);
	const message = data as Record<string, unknown>;
	refuseUnknown(kind, message);
	if (message.terminalId !== undefined && message.terminalId !== terminalId)
		throw Errors.forbidden(`The token is for terminal '${terminalId}', not '${String(message.terminalId)}'`);
	// Checked by the dispatcher: the types here are what the message claims.
	const base = { terminalId, taskId: message.taskId as string, attempt: message.attempt as number };
	if (kind === "ack") return { kind, ...base };
	const reply: TerminalReply = { kind, ...base, status: message.status as ResultStatus };
	if (message.output !== undefined) reply.output = message.output;
	if (message.error !== undefined) reply.error = message.error as string;
	if (message.exitCode !== undefined) reply.exitCode = message.exitCode as number;
	return reply;
}

/** Bytes of a result's `output` as JSON (0 when there is none); safe once the message passed checkDepth. */
export function outputBytes(output: unknown): number {
	if (output === undefined) return 0;
	return Buffer.byteLength(JSON.stringify(output) ?? "");
}

/**
 * A result whose output is over `limit`, turned into a failed result without it (the task must
 * end FAILED, not wait for its timeout), and the error to tell the terminal; null when it fits.
 */
export function refuseOversize(reply: TerminalReply, limit: number): { failed: TerminalReply; error: Error } | null {
	if (reply.kind !== "result") return null;
	const bytes = outputBytes(reply.output);
	if (bytes <= limit) return null;
	const error = Errors.resultTooLarge(String(reply.taskId), bytes, limit);
	const { output: _dropped, ...rest } = reply;
	return {
		failed: { ...rest, status: "failed", error: `${ErrorTypes.RESULT_TOO_LARGE}: ${error.message}` },
		error
	};
}

/** What a validation item may tell a caller: its field, its sentence, its rule; never the value given. */
function publicItem(item: unknown): { field?: string; message?: string; type?: string } {
	const { field, message, type } = (item ?? {}) as Record<string, unknown>;
	return {
		...(typeof field === "string" ? { field } : {}),
		...(typeof message === "string" ? { message } : {}),
		...(typeof type === "string" ? { type } : {})
	};
}

/**
 * The error a terminal or follower is told. A validation error's items keep only field, message
 * and type: the validator's `nodeID` and `action` are the cluster's business, and `actual` would
 * echo the caller's value back (and walk it, to encode it).
 */
export function socketError(err: unknown, event?: string): SocketErrorPayload {
	const payload = toErrorPayload(err, event);
	if (payload.type === ErrorTypes.VALIDATION && Array.isArray(payload.data))
		payload.data = (payload.data as unknown[]).map(publicItem);
	return payload;
}
