/**
 * A fixed-window rate limit per key (a client address, a token, a terminal): at most `limit`
 * hits per `windowMs` for each key, counted from the key's first hit of the window. The keys live
 * in an LRU of `maxKeys` entries, so memory stays bounded whatever the number of callers; a key
 * pushed out of it starts afresh (a flood of new keys cannot buy the old ones more room than a
 * fresh window). The clock is injectable: tests move time instead of waiting for it.
 */
import { LRUCache } from "lru-cache";

export interface RateLimitOptions {
	/** Hits per window and key; 0 lifts the limit. */
	limit: number;
	/** @defaultValue 1000 ms */
	windowMs?: number;
	/** Keys remembered at most. @defaultValue 100000 */
	maxKeys?: number;
	/** Milliseconds now. @defaultValue Date.now */
	now?: () => number;
}

/** A hit's verdict: let through, or refused with how long until the key's window ends. */
export type RateVerdict = { ok: true; remaining: number } | { ok: false; retryAfterMs: number };

interface Window {
	start: number;
	count: number;
}

export class RateLimiter {
	/** Hits per window and key; 0: no limit. Changed at run time by `PUT /api/system/config`. */
	limit: number;
	readonly windowMs: number;
	private readonly now: () => number;
	private readonly windows: LRUCache<string, Window>;

	constructor(options: RateLimitOptions) {
		this.limit = options.limit;
		this.windowMs = options.windowMs ?? 1000;
		this.now = options.now ?? Date.now;
		this.windows = new LRUCache<string, Window>({ max: options.maxKeys ?? 100_000 });
	}

	/** Counts one hit of `key`; refused once the key has had `limit` hits in its window. */
	hit(key: string): RateVerdict {
		if (this.limit <= 0) return { ok: true, remaining: Number.POSITIVE_INFINITY };
		const now = this.now();
		let window = this.windows.get(key);
		if (!window || now - window.start >= this.windowMs) {
			window = { start: now, count: 0 };
			this.windows.set(key, window);
		}
		if (window.count >= this.limit) return { ok: false, retryAfterMs: window.start + this.windowMs - now };
		window.count++;
		return { ok: true, remaining: this.limit - window.count };
	}

	/** Forgets a key (a session that ended). */
	forget(key: string): void {
		this.windows.delete(key);
	}

	/** Keys remembered now. */
	get size(): number {
		return this.windows.size;
	}
}

/** Seconds to tell a refused caller (`Retry-After` is whole seconds, at least 1). */
export function retryAfterSeconds(verdict: { retryAfterMs: number }): number {
	return Math.max(1, Math.ceil(verdict.retryAfterMs / 1000));
}
