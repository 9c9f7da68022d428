/**
 * Long-lived, scoped API tokens (`/api/tokens`). A token reads `tern_<id>_<secret>`: the id finds
 * the row, the secret (32 random bytes) is compared with the SHA-256 kept in it; the secret
 * itself is shown once, at creation. A token acts as its user with a role capped by its scope.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Context } from "moleculer";
import { UniqueConstraintError } from "sequelize";
import type { ApiTokenView, CreateApiTokenParams, Role, TernMeta, TokenScope, UserPrincipal } from "../../lib/contracts.ts";
import { Errors } from "../../lib/errors.ts";
import { requireUser } from "../../lib/access.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { ApiTokenRow } from "../../models/api-token.model.ts";
import type { UserRow } from "../../models/user.model.ts";
import type { AuthThis } from "./types.ts";
import { issuedBeforeReset, loadUser } from "./users.ts";

export const API_TOKEN_PREFIX = "tern_";
const TOKEN_PATTERN = /^tern_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;
const DAY_MS = 86_400_000;

/** `auth.apiToken.revoked`: replicas drop the cached row. */
export interface ApiTokenRevokedEvent {
	id: string;
}

export interface CreatedApiToken extends ApiTokenView {
	/** `tern_…`: shown this once. */
	token: string;
}

const hashOf = (secret: string) => createHash("sha256").update(secret).digest("hex");
const iso = (ms: number | string | null) => (ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString());

/** The most a token of `scope` may do as a user of `role`. */
export function cappedRole(role: Role, scope: TokenScope): Role {
	if (scope === "read") return "viewer";
	if (scope === "submit") return role === "admin" ? "operator" : role;
	return role;
}

export function tokenView(row: ApiTokenRow, username: string): ApiTokenView {
	return {
		id: row.id,
		name: row.name,
		scope: row.scope,
		userId: row.userId,
		username,
		createdAt: iso(row.createdAt)!,
		expiresAt: iso(row.expiresAt),
		lastUsedAt: iso(row.lastUsedAt),
		revokedAt: iso(row.revokedAt)
	};
}

function callerOf(ctx: Context<unknown, TernMeta>): UserPrincipal {
	requireUser(ctx, "viewer");
	const principal = ctx.meta.principal;
	if (principal?.kind !== "user") throw Errors.forbidden("API tokens belong to users: call this with a user's token");
	return principal;
}

/** `POST /api/tokens` → 201 the token's view and, this once, its secret. */
export async function createToken(svc: AuthThis, ctx: Context<CreateApiTokenParams, TernMeta>): Promise<CreatedApiToken> {
	const caller = callerOf(ctx);
	const { name, scope, expiresInDays } = ctx.params;
	const now = Date.now();
	const id = uuidv7();
	const secret = randomBytes(32).toString("base64url");
	const row: ApiTokenRow = {
		id,
		name,
		userId: caller.userId,
		scope,
		secretHash: hashOf(secret),
		createdAt: now,
		expiresAt: expiresInDays === undefined ? null : now + expiresInDays * DAY_MS,
		lastUsedAt: null,
		revokedAt: null
	};
	// A revoked or expired token leaves its name free.
	const existing = (await svc.apiTokens.findOne({
		where: { userId: caller.userId, name },
		raw: true
	})) as unknown as ApiTokenRow | null;
	if (existing) {
		const dead = existing.revokedAt !== null || (existing.expiresAt !== null && Number(existing.expiresAt) <= now);
		if (!dead) throw Errors.tokenExists(name);
		await svc.apiTokens.destroy({ where: { id: existing.id } });
	}
	try {
		await svc.apiTokens.create(row);
	} catch (err) {
		if (err instanceof UniqueConstraintError) throw Errors.tokenExists(name);
		throw err;
	}
	ctx.meta.$statusCode = 201;
	ctx.meta.$location = `/api/tokens/${id}`;
	return { ...tokenView(row, caller.username), token: `${API_TOKEN_PREFIX}${id}_${secret}` };
}

/** `GET /api/tokens`: the caller's own; an admin's, everyone's. */
export async function listTokens(svc: AuthThis, ctx: Context<unknown, TernMeta>): Promise<ApiTokenView[]> {
	const caller = callerOf(ctx);
	const all = caller.role === "admin";
	const rows = (await svc.apiTokens.findAll({
		...(all ? {} : { where: { userId: caller.userId } }),
		order: [["createdAt", "ASC"]],
		raw: true
	})) as unknown as ApiTokenRow[];
	const names = new Map<number, string>([[caller.userId, caller.username]]);
	if (all) {
		const users = (await svc.model.findAll({ attributes: ["id", "username"], raw: true })) as unknown as UserRow[];
		for (const user of users) names.set(user.id, user.username);
	}
	return rows.map(row => tokenView(row, names.get(row.userId) ?? `#${row.userId}`));
}

/** `DELETE /api/tokens/:id`: the caller's own, or any for an admin; TOKEN_NOT_FOUND otherwise. */
export async function revokeToken(svc: AuthThis, ctx: Context<unknown, TernMeta>, id: string): Promise<ApiTokenView> {
	const caller = callerOf(ctx);
	const row = (await svc.apiTokens.findByPk(id, { raw: true })) as unknown as ApiTokenRow | null;
	if (!row || (row.userId !== caller.userId && caller.role !== "admin")) throw Errors.tokenNotFound(id);
	const revokedAt = row.revokedAt ?? Date.now();
	if (row.revokedAt === null) await svc.apiTokens.update({ revokedAt }, { where: { id: row.id } });
	svc.tokenRows.delete(row.id);
	await ctx.broadcast("auth.apiToken.revoked", { id: row.id } satisfies ApiTokenRevokedEvent);
	const owner = row.userId === caller.userId ? caller.username : ((await loadUser(svc, row.userId))?.username ?? "");
	return tokenView({ ...row, revokedAt }, owner);
}

/** The principal of an API token; INVALID_TOKEN when unknown, revoked, expired or its user is gone or disabled. */
export async function verifyApiToken(svc: AuthThis, token: string): Promise<UserPrincipal> {
	const match = TOKEN_PATTERN.exec(token);
	if (!match) throw Errors.invalidToken("it is not a well-formed API token");
	const [, id, secret] = match;
	let row = svc.tokenRows.get(id) ?? null;
	if (!row) {
		row = (await svc.apiTokens.findByPk(id, { raw: true })) as unknown as ApiTokenRow | null;
		if (row) svc.tokenRows.set(id, row);
	}
	const given = Buffer.from(hashOf(secret), "hex");
	const expected = row ? Buffer.from(row.secretHash, "hex") : Buffer.alloc(given.length);
	if (!row || expected.length !== given.length || !timingSafeEqual(given, expected))
		throw Errors.invalidToken("no such API token");
	const now = Date.now();
	if (row.revokedAt !== null) throw Errors.invalidToken(`API token '${row.name}' was revoked`);
	if (row.expiresAt !== null && Number(row.expiresAt) <= now) throw Errors.invalidToken(`API token '${row.name}' has expired`);
	const user = await loadUser(svc, row.userId);
	if (!user) throw Errors.invalidToken(`the user of API token '${row.name}' no longer exists`);
	if (user.disabled) throw Errors.invalidToken(`user '${user.username}' is disabled`);
	if (issuedBeforeReset(user, Number(row.createdAt)))
		throw Errors.invalidToken(`API token '${row.name}' predates its user's password change`);
	touch(svc, row, now);
	return {
		kind: "user",
		userId: user.id,
		username: user.username,
		role: cappedRole(user.role, row.scope),
		apiToken: { id: row.id, name: row.name, scope: row.scope }
	};
}

/** Writes lastUsedAt at most once per `apiTokenTouchInterval` per token, without holding up the call. */
function touch(svc: AuthThis, row: ApiTokenRow, now: number): void {
	const last = svc.touched.get(row.id) ?? (row.lastUsedAt === null ? undefined : Number(row.lastUsedAt));
	if (last !== undefined && now - last < svc.settings.apiTokenTouchInterval) return;
	svc.touched.set(row.id, now);
	svc.apiTokens
		.update({ lastUsedAt: now }, { where: { id: row.id } })
		.catch((err: unknown) => svc.logger.warn(`Could not note the use of API token '${row.id}'`, err));
}
