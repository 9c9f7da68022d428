/**
 * Tokens made by hand, as an attacker or a stale client would: JWTs with any header and claims,
 * signed with any secret; and the second confirmation of a destructive call, done in full.
 */
import { SignJWT, type JWTPayload } from "jose";
import { kidOf } from "../../services/auth/keys.ts";
import { restCall, type Reply } from "./rest.ts";

export interface HandMadeJwt {
	secret: string;
	claims?: JWTPayload;
	sub?: string;
	/** s since the epoch; now by default. */
	iat?: number;
	/** s since the epoch; an hour from now by default; null for none. */
	exp?: number | null;
	iss?: string | null;
	aud?: string | null;
	jti?: string | null;
	alg?: string;
	/** The secret's kid by default; null for none. */
	kid?: string | null;
}

/** A JWT as Tern signs them (iss and aud "tern", kid of the secret) unless told otherwise. */
export async function handMadeJwt(options: HandMadeJwt): Promise<string> {
	const now = Math.floor(Date.now() / 1000);
	const kid = options.kid === undefined ? kidOf(options.secret) : options.kid;
	const jwt = new SignJWT(options.claims ?? {})
		.setProtectedHeader({ alg: options.alg ?? "HS256", ...(kid === null ? {} : { kid }) })
		.setSubject(options.sub ?? "admin")
		.setIssuedAt(options.iat ?? now);
	const exp = options.exp === undefined ? now + 3600 : options.exp;
	if (exp !== null) jwt.setExpirationTime(exp);
	const iss = options.iss === undefined ? "tern" : options.iss;
	if (iss !== null) jwt.setIssuer(iss);
	const aud = options.aud === undefined ? "tern" : options.aud;
	if (aud !== null) jwt.setAudience(aud);
	const jti = options.jti === undefined ? `hand-${Math.random().toString(36).slice(2)}` : options.jti;
	if (jti !== null) jwt.setJti(jti);
	return jwt.sign(new TextEncoder().encode(options.secret));
}

/** An unsecured JWT (`alg: none`): header and claims, no signature. */
export function unsignedJwt(claims: JWTPayload, kid?: string): string {
	const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
	return `${part({ alg: "none", typ: "JWT", ...(kid ? { kid } : {}) })}.${part(claims)}.`;
}

/** A call with `X-Confirm`. */
export function withConfirm(url: string, method: string, token: string, confirm: string, body?: unknown): Promise<Reply> {
	return restCall(url, method, body, token, undefined, { "x-confirm": confirm });
}

/**
 * A destructive call through its second confirmation: the first call must answer 202 with a
 * challenge naming `action`; the answer of the repeat with `X-Confirm` is returned. A first answer
 * other than 202 (an error) is returned as it is.
 */
export async function confirmedCall<T = any>(url: string, method: string, token: string, body?: unknown): Promise<Reply<T>> {
	const first = await restCall<{ confirm?: { token: string } }>(url, method, body, token);
	if (first.status !== 202) return first as unknown as Reply<T>;
	if (!first.body?.confirm?.token) throw new Error(`202 without a confirmation: ${JSON.stringify(first.body)}`);
	return withConfirm(url, method, token, first.body.confirm.token, body) as Promise<Reply<T>>;
}
