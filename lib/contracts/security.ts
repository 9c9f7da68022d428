/**
 * The security contracts: audit rows, API tokens, user changes and the limits' answers.
 */
import type { Role } from "./core.ts";
import type { TokenScope } from "./access.ts";

export type ActorType = "user" | "token" | "terminal" | "anonymous" | "system";

/** What a mutating call reports to the audit log (`audit.record`); the audit service adds id, time and hash. */
export interface AuditEntry {
	/** ms since the epoch. */
	at: number;
	/** `admin`, `token:<name>`, `build-7`; the attempted username for a failed login. */
	actor: string;
	actorType: ActorType;
	/** The action, e.g. `scheduler.remove`. */
	action: string;
	/** `job:<id>`, `terminal:<id>`, or null when the call names none. */
	object: string | null;
	address: string | null;
	userAgent: string | null;
	/** `ok`, or the error `type` the call ended with. */
	outcome: string;
	/** The fields the call set, secrets as "***"; null for a call that sets none. */
	changes: Record<string, unknown> | null;
}

/** One row of the audit log (`GET /api/audit`). Append-only; its hash chains it to the row before. */
export interface AuditRow extends Omit<AuditEntry, "at"> {
	id: number;
	/** ISO-8601. */
	at: string;
}

export interface AuditQuery {
	actor?: string;
	action?: string;
	object?: string;
	/** ISO-8601 or ms. */
	since?: string;
	until?: string;
	page?: number;
	pageSize?: number;
}

/** `POST /api/audit/verify`: the chain checked from the first row to the last. */
export interface AuditVerification {
	ok: boolean;
	checked: number;
	/** The first row whose hash does not follow from its content and the row before. */
	firstBadId: number | null;
	reason: string | null;
}

/** A long-lived API token as listed (`GET /api/tokens`); its secret is shown once, at creation. */
export interface ApiTokenView {
	id: string;
	name: string;
	scope: TokenScope;
	userId: number;
	username: string;
	createdAt: string;
	expiresAt: string | null;
	lastUsedAt: string | null;
	revokedAt: string | null;
}

export interface CreateApiTokenParams {
	name: string;
	scope: TokenScope;
	/** Lifetime in days; none for a token that lives until revoked. */
	expiresInDays?: number;
}

/** `PATCH /api/users/:id`. */
export interface UpdateUserParams {
	id: number;
	role?: Role;
	disabled?: boolean;
	password?: string;
	/** Needed when a user changes their own password. */
	currentPassword?: string;
}
