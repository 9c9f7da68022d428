/**
 * How fast a terminal may talk and reconnect. Messages: at most `limit` per second per session;
 * a message past it is refused with RATE_LIMITED and not handled, and a session that sends twice
 * its limit within one second is abuse: it is told so and disconnected. Connections: one terminal
 * id may open at most `reconnectLimit` sessions per `reconnectWindow` (each replaces the one
 * before it); past that the handshake is refused with RATE_LIMITED and when to come back.
 */
import { Errors } from "../../lib/errors.ts";
import { RateLimiter, retryAfterSeconds } from "../../lib/http/rate-limit.ts";

export interface TerminalLimits {
	/** Messages per session and second; 0: no limit. */
	messageRateLimit: number;
	/** Sessions per terminal id and reconnectWindow; 0: no limit. */
	reconnectLimit: number;
	reconnectWindow: number;
	/** Milliseconds now (tests move it). @defaultValue Date.now */
	clock?: () => number;
}

/** A message's verdict: handled, refused, or refused and the session ends. */
export type MessageVerdict = { ok: true } | { ok: false; error: Error; abuse: boolean };

const SECOND = 1000;

/** One session's messages in the current second. */
export class MessageMeter {
	private start = Number.NEGATIVE_INFINITY;
	private count = 0;
	private refused = 0;

	take(limit: number, now: number): MessageVerdict {
		if (limit <= 0) return { ok: true };
		if (now - this.start >= SECOND) {
			this.start = now;
			this.count = this.refused = 0;
		}
		if (this.count < limit) {
			this.count++;
			return { ok: true };
		}
		this.refused++;
		const retryAfter = retryAfterSeconds({ retryAfterMs: this.start + SECOND - now });
		return { ok: false, error: Errors.rateLimited(retryAfter, "messages"), abuse: this.refused >= limit };
	}
}

/** Connections per terminal id, for every session of this gateway. */
export class ReconnectGuard {
	private readonly limits: TerminalLimits;
	private readonly byId: RateLimiter;

	constructor(limits: TerminalLimits) {
		this.limits = limits;
		this.byId = new RateLimiter({ limit: limits.reconnectLimit, windowMs: limits.reconnectWindow, now: limits.clock });
	}

	/** Counts a connection of `terminalId`; throws RATE_LIMITED (with `retryAfter`, s) past the limit. */
	admit(terminalId: string): void {
		this.byId.limit = this.limits.reconnectLimit;
		const verdict = this.byId.hit(terminalId);
		if (!verdict.ok) throw Errors.rateLimited(retryAfterSeconds(verdict), "connections of this terminal");
	}
}
