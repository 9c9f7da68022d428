import type { Backoff } from "./contracts.ts";

/** Longest wait between retries, whatever the backoff says: one day. */
export const MAX_BACKOFF_MS = 86_400_000;

/**
 * Delay before retry number `retry` (1 for the first retry). Fixed: `delay`; exponential:
 * `delay * 2^(retry-1)`. Jitter `j` spreads the result uniformly over ±j of itself so that
 * tasks failed together do not retry together.
 */
export function backoffDelay(backoff: Backoff | null | undefined, retry: number, random = Math.random): number {
	if (!backoff) return 0;
	const base = backoff.type === "exponential" ? backoff.delay * 2 ** Math.max(0, retry - 1) : backoff.delay;
	const jitter = Math.min(Math.max(backoff.jitter ?? 0, 0), 1);
	const spread = base * jitter * (random() * 2 - 1);
	return Math.round(Math.min(Math.max(base + spread, 0), MAX_BACKOFF_MS));
}
