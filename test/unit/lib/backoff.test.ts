import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { backoffDelay, MAX_BACKOFF_MS } from "../../../lib/backoff.ts";

describe("backoffDelay", () => {
	it("is zero without a backoff", () => {
		assert.equal(backoffDelay(null, 1), 0);
		assert.equal(backoffDelay(undefined, 5), 0);
	});

	it("fixed waits the same each retry; exponential doubles", () => {
		assert.deepEqual(
			[1, 2, 3].map(r => backoffDelay({ type: "fixed", delay: 500 }, r)),
			[500, 500, 500]
		);
		assert.deepEqual(
			[1, 2, 3, 4].map(r => backoffDelay({ type: "exponential", delay: 100 }, r)),
			[100, 200, 400, 800]
		);
	});

	it("jitter stays within ±jitter of the base and never goes negative or past a day", () => {
		fc.assert(
			fc.property(
				fc.constantFrom("fixed" as const, "exponential" as const),
				fc.integer({ min: 0, max: 1_000_000 }),
				fc.double({ min: 0, max: 1, noNaN: true }),
				fc.integer({ min: 1, max: 40 }),
				fc.double({ min: 0, max: 0.999999, noNaN: true }),
				(type, delay, jitter, retry, r) => {
					const base = type === "exponential" ? delay * 2 ** (retry - 1) : delay;
					const value = backoffDelay({ type, delay, jitter }, retry, () => r);
					if (value < 0 || value > MAX_BACKOFF_MS) return false;
					if (base <= MAX_BACKOFF_MS) return Math.abs(value - base) <= base * jitter + 1;
					return true;
				}
			)
		);
	});
});
