/**
 * What every REST request meets before it reaches a route: the secure headers, CORS, and the
 * rate limit of its client address; and once its caller is known, the rate limit of its token.
 * Both limits answer 429 RATE_LIMITED with `Retry-After`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Principal } from "../contracts.ts";
import { Errors } from "../errors.ts";
import { CorsPolicy } from "./cors.ts";
import { setSecureHeaders } from "./headers.ts";
import { RateLimiter, retryAfterSeconds } from "./rate-limit.ts";

export interface RequestLimits {
	/** Requests per window per client address (before authentication); 0: no limit. */
	address: number;
	/** Requests per window per token (after authentication); 0: no limit. */
	token: number;
	/** @defaultValue 1000 ms */
	window?: number;
	/** Milliseconds now (tests move it). @defaultValue Date.now */
	clock?: () => number;
}

export interface GuardOptions {
	/** null: no limits at all. */
	limits: RequestLimits | null;
	corsOrigins: readonly string[];
}

/** Whose share of the token limit a request uses: one per API token, user or terminal. */
export function principalKey(principal: Principal): string {
	if (principal.kind === "terminal") return `terminal:${principal.terminalId}`;
	if (principal.apiToken) return `token:${principal.apiToken.id}`;
	return `user:${principal.userId}`;
}

export class RequestGuard {
	readonly byAddress: RateLimiter;
	readonly byToken: RateLimiter;
	private readonly cors: CorsPolicy;

	constructor(options: GuardOptions) {
		const { window = 1000, clock: now } = options.limits ?? {};
		this.byAddress = new RateLimiter({ limit: options.limits?.address ?? 0, windowMs: window, now });
		this.byToken = new RateLimiter({ limit: options.limits?.token ?? 0, windowMs: window, now });
		this.cors = new CorsPolicy(options.corsOrigins);
	}

	/**
	 * Headers, CORS and the address limit of a request. "answered": a CORS preflight, done;
	 * an Error: the request is refused with it; null: on to the routes.
	 */
	front(req: IncomingMessage, res: ServerResponse, tls: boolean): "answered" | Error | null {
		setSecureHeaders(req, res, tls);
		if (this.cors.apply(req, res)) return "answered";
		const verdict = this.byAddress.hit(req.socket.remoteAddress ?? "unknown");
		return verdict.ok ? null : Errors.rateLimited(retryAfterSeconds(verdict));
	}

	/** The token limit of an authenticated caller: throws RATE_LIMITED past it. */
	caller(principal: Principal): void {
		const verdict = this.byToken.hit(principalKey(principal));
		if (!verdict.ok) throw Errors.rateLimited(retryAfterSeconds(verdict));
	}
}
