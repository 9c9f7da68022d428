/**
 * Jittered exponential backoff for reconnecting: `initial * 2^n`, capped at `max`, each delay
 * spread over ±`jitter` of itself so that many agents cut off together do not come back together.
 */

export interface BackoffOptions {
	/** First delay, ms. */
	initialMs: number;
	/** Longest delay, ms. */
	maxMs: number;
	/** 0..1: fraction of the delay added or removed at random. */
	jitter: number;
}

export class Backoff {
	private failures = 0;
	private readonly options: BackoffOptions;
	private readonly random: () => number;

	constructor(options: BackoffOptions, random: () => number = Math.random) {
		this.options = options;
		this.random = random;
	}

	/** The delay before the next try; each call counts one more failure. */
	next(): number {
		const { initialMs, maxMs, jitter } = this.options;
		const base = Math.min(initialMs * 2 ** Math.min(this.failures, 30), maxMs);
		this.failures++;
		const spread = base * Math.min(Math.max(jitter, 0), 1) * (this.random() * 2 - 1);
		return Math.max(0, Math.round(Math.min(base + spread, maxMs)));
	}

	/** Failures since the last reset. */
	get attempts(): number {
		return this.failures;
	}

	reset(): void {
		this.failures = 0;
	}
}
