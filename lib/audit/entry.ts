/**
 * One call as the audit log tells it: who, what, on which object, from where, how it ended and
 * what it set. Pure: the middleware gathers the facts, this turns them into an AuditEntry.
 */
import type { ActionAccess } from "../contracts/access.ts";
import type { ClientInfo, Principal } from "../contracts/core.ts";
import type { ActorType, AuditEntry } from "../contracts/security.ts";
import { changesOf } from "./redact.ts";

/** Longest `object` a row holds (the column's width). */
export const MAX_OBJECT = 255;
const MAX_ACTOR = 191;

/** What the middleware saw of one call. */
export interface AuditedCall {
	at: number;
	action: string;
	access: ActionAccess;
	params: unknown;
	principal: Principal | undefined;
	client: ClientInfo | undefined;
	/** `ok`, or the error's `type`. */
	outcome: string;
	/** The handler's answer, when it had one: names an object the caller did not (a generated id). */
	result?: unknown;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** At most `max` UTF-16 units, and well-formed (a pair cut in half would be refused by MySQL's utf8mb4). */
export function cut(value: string, max: number): string {
	return value.slice(0, max).replace(LONE_SURROGATE, "\uFFFD");
}

/** Actions whose params are credentials, not changes. */
const SETS_NOTHING: ReadonlySet<string> = new Set(["auth.login", "auth.logout"]);

function field(value: unknown, name: string): unknown {
	return value !== null && typeof value === "object" && !Array.isArray(value)
		? (value as Record<string, unknown>)[name]
		: undefined;
}

function text(value: unknown): string | null {
	if (typeof value === "string") return value;
	if (typeof value === "number" || typeof value === "boolean") return String(value);
	return null;
}

/** The caller: a user by name, an API token as `token:<name>`, a terminal by id. */
export function actorOf(call: Pick<AuditedCall, "action" | "params" | "principal" | "outcome">): {
	actor: string;
	actorType: ActorType;
} {
	const { principal } = call;
	if (call.action === "auth.login") {
		const attempted = text(field(call.params, "username")) ?? "";
		return { actor: cut(attempted, MAX_ACTOR), actorType: call.outcome === "ok" ? "user" : "anonymous" };
	}
	if (!principal) return { actor: "anonymous", actorType: "anonymous" };
	if (principal.kind === "terminal") return { actor: cut(principal.terminalId, MAX_ACTOR), actorType: "terminal" };
	if (principal.apiToken) return { actor: cut(`token:${principal.apiToken.name}`, MAX_ACTOR), actorType: "token" };
	return { actor: cut(principal.username, MAX_ACTOR), actorType: "user" };
}

/** `<kind>:<value>` of the object the action names, from its params (or its answer, for a new id). */
export function objectOf(call: Pick<AuditedCall, "access" | "params" | "result">): string | null {
	const object = call.access.object;
	if (!object) return null;
	const value = text(field(call.params, object.param)) ?? text(field(call.result, object.param));
	return value === null ? null : cut(`${object.kind}:${value}`, MAX_OBJECT);
}

export function toEntry(call: AuditedCall): AuditEntry {
	return {
		at: call.at,
		...actorOf(call),
		action: call.action,
		object: objectOf(call),
		address: call.client?.address ? cut(call.client.address, 64) : null,
		userAgent: call.client?.userAgent ? cut(call.client.userAgent, 255) : null,
		outcome: cut(call.outcome, 64),
		changes: SETS_NOTHING.has(call.action) ? null : changesOf(call.params, call.access.object?.param)
	};
}
