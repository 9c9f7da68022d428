/**
 * From a bearer token to its principal. A `tern_…` token is an API token (api-tokens.ts);
 * anything else must be a JWT of Tern's key ring, not revoked, whose user or terminal still
 * accepts it. Checked signatures are cached; what may change under a token (revocation, the
 * user, the terminal's key) is checked on every call.
 */
import type { Context } from "moleculer";
import type { JWTPayload } from "jose";
import type { Principal } from "../../lib/contracts.ts";
import { Errors } from "../../lib/errors.ts";
import { call } from "../../lib/actions.ts";
import type { AuthThis } from "./types.ts";
import { API_TOKEN_PREFIX, verifyApiToken } from "./api-tokens.ts";
import { issuedBeforeReset, loadUser } from "./users.ts";

/** The checked claims of a JWT, from the cache while they have not expired. */
async function claimsOf(svc: AuthThis, token: string): Promise<JWTPayload> {
	const cached = svc.verified.get(token);
	if (cached && cached.exp !== undefined && cached.exp * 1000 > Date.now()) return cached;
	if (cached) svc.verified.delete(token);
	const claims = await svc.keys.verify(token);
	svc.verified.set(token, claims);
	return claims;
}

/** When the token was issued, ms: the private `its` claim when present (iat has whole seconds). */
function issuedAtMs(claims: JWTPayload): number {
	return typeof claims.its === "number" ? claims.its : (claims.iat ?? 0) * 1000;
}

export async function verifyToken(svc: AuthThis, ctx: Context, token: string): Promise<Principal> {
	if (token.startsWith(API_TOKEN_PREFIX)) return verifyApiToken(svc, token);
	const claims = await claimsOf(svc, token);
	if (svc.revocations.has(claims.jti)) throw Errors.invalidToken("it was revoked (logged out)");
	if (claims.kind === "user" && typeof claims.sub === "string") {
		// A deleted user's tokens die with the user; the role is the user's current one.
		const row = await loadUser(svc, Number(claims.uid));
		if (!row || row.username !== claims.sub) throw Errors.invalidToken(`user '${claims.sub}' no longer exists`);
		if (row.disabled) throw Errors.invalidToken(`user '${row.username}' is disabled`);
		if (issuedBeforeReset(row, issuedAtMs(claims)))
			throw Errors.invalidToken("it was issued before the user's password changed or the user was disabled");
		return { kind: "user", userId: row.id, username: row.username, role: row.role, jti: claims.jti, exp: claims.exp };
	}
	if (claims.kind === "terminal" && typeof claims.sub === "string") {
		const terminal = await call(ctx, "terminals.resolve", { id: claims.sub });
		if (!terminal) throw Errors.invalidToken(`terminal '${claims.sub}' is not registered`);
		const current = terminal.keyVersion === claims.kv;
		const inGrace =
			terminal.previousKeyVersion !== null &&
			terminal.previousKeyVersion !== undefined &&
			terminal.previousKeyVersion === claims.kv &&
			Number(terminal.previousKeyUntil ?? 0) > Date.now();
		if (!current && !inGrace) throw Errors.invalidToken("the terminal's key was rotated");
		if (!terminal.enabled) throw Errors.terminalDisabled(terminal.id);
		return { kind: "terminal", terminalId: terminal.id, jti: claims.jti, exp: claims.exp };
	}
	throw Errors.invalidToken("it names no known principal");
}
