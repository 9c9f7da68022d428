/**
 * Second confirmation of destructive operations. The first call answers 202 with
 * a token; the same call repeated with `X-Confirm: <token>` within the token's lifetime executes.
 *
 * The token is stateless: an HMAC over the action, the object, the actor and the expiry, so any
 * replica that holds the key checks it and nothing is stored. It may be used more than once
 * within its minute; the operations it guards (deletes) are idempotent, so a replay finds the
 * object gone.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context } from "moleculer";
import { Errors } from "./errors.ts";
import type { CheckConfirmationParams, ConfirmationChallenge, ConfirmRequest, Principal, TernMeta } from "./contracts.ts";
import { call } from "./actions.ts";

export type { CheckConfirmationParams, ConfirmRequest };

/** How long a confirmation token is good for, ms. */
export const CONFIRM_TTL_MS = 60_000;

/** What a token is bound to. */
export interface ConfirmSubject {
	/** The action it confirms, e.g. `terminals.delete`. */
	action: string;
	/** The object acted on, e.g. `terminal:build-7`. */
	object: string;
	/** Who asked (see actorOf): a token made for one caller does not work for another. */
	actor: string;
}

interface Claims {
	a: string;
	o: string;
	u: string;
	/** Expiry, ms since the epoch. */
	e: number;
	/** Makes two tokens for the same subject differ. */
	n: string;
}

function mac(key: Uint8Array, body: string): Buffer {
	return createHmac("sha256", key).update(body).digest();
}

/** A token for `subject`, good until `now + ttlMs`. */
export function signConfirmation(
	key: Uint8Array,
	subject: ConfirmSubject,
	now: number,
	ttlMs = CONFIRM_TTL_MS
): { token: string; expiresAt: number } {
	const expiresAt = now + ttlMs;
	const claims: Claims = {
		a: subject.action,
		o: subject.object,
		u: subject.actor,
		e: expiresAt,
		n: randomBytes(8).toString("base64url")
	};
	const body = Buffer.from(JSON.stringify(claims)).toString("base64url");
	return { token: `${body}.${mac(key, body).toString("base64url")}`, expiresAt };
}

/** Throws CONFIRMATION_INVALID or CONFIRMATION_EXPIRED unless `token` confirms `subject` at `now`. */
export function verifyConfirmation(key: Uint8Array, token: string, subject: ConfirmSubject, now: number): void {
	const fail = (reason: string) => Errors.confirmationInvalid(reason, subject.action, subject.object);
	const [body, signature, extra] = token.split(".");
	if (!body || !signature || extra !== undefined) throw fail("it is malformed");
	const given = Buffer.from(signature, "base64url");
	const expected = mac(key, body);
	if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw fail("its signature does not match");
	let claims: Claims;
	try {
		claims = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as Claims;
	} catch {
		throw fail("it is malformed");
	}
	if (claims.a !== subject.action || claims.o !== subject.object) throw fail("it was issued for another operation");
	if (claims.u !== subject.actor) throw fail("it was issued to another caller");
	if (typeof claims.e !== "number" || now >= claims.e)
		throw Errors.confirmationExpired(subject.action, subject.object, claims.e);
}

/** The caller as a token names it. */
export function actorOf(principal: Principal | undefined): string {
	if (!principal) return "internal";
	return principal.kind === "user" ? `user:${principal.userId}` : `terminal:${principal.terminalId}`;
}

/**
 * moleculer-web alias middleware: carries the `X-Confirm` header into `ctx.meta.confirm`, e.g.
 * `"DELETE terminals/:id": [confirmHeader, "terminals.delete"]`.
 */
export function confirmHeader(
	req: IncomingMessage & { $ctx?: Context<unknown, TernMeta> },
	_res: ServerResponse,
	next: (err?: unknown) => void
): void {
	const header = req.headers["x-confirm"];
	const token = Array.isArray(header) ? header[0] : header;
	if (token && req.$ctx) req.$ctx.meta.confirm = token.trim();
	next();
}

/**
 * Call at the top of a destructive action: null when it may go ahead (confirmed, or an internal
 * call, which is trusted), else the 202 challenge to return as it is. The key lives with `auth`,
 * which signs and checks the tokens, so every replica of every service accepts the same ones.
 */
export async function secondConfirmation(
	ctx: Context<unknown, TernMeta>,
	request: ConfirmRequest
): Promise<ConfirmationChallenge | null> {
	if (!ctx.meta.principal) return null;
	const token = ctx.meta.confirm;
	if (token) {
		await call(ctx, "auth.checkConfirmation", {
			token,
			action: request.action,
			object: request.object
		});
		return null;
	}
	const challenge = await call(ctx, "auth.issueConfirmation", request);
	ctx.meta.$statusCode = 202;
	return challenge;
}
