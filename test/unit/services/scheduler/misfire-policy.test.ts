import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { planLate, type LateRuns } from "../../../../services/scheduler/misfire-policy.ts";

const NOW = Date.parse("2026-06-01T12:00:00Z");
const GRACE = 5000;

/** Late fire times every `every` ms, the newest `newestLate` ms before NOW. */
function lateRuns(
	policy: LateRuns["policy"],
	count: number,
	every: number,
	newestLate: number,
	extra: Partial<LateRuns> = {}
): LateRuns {
	const times = Array.from({ length: count }, (_, i) => NOW - newestLate - (count - 1 - i) * every);
	return {
		policy,
		times,
		more: 0,
		now: NOW,
		grace: GRACE,
		catchUpWindowMs: 3_600_000,
		pausedAt: null,
		resumedAt: null,
		...extra
	};
}

describe("scheduler misfire policy", () => {
	it("one fire time late by less than the grace is an ordinary fire, whatever the policy", () => {
		for (const policy of ["skip", "fire_once", "catch_up"] as const)
			assert.deepEqual(planLate(lateRuns(policy, 1, 0, 4999)), {
				fire: [{ time: NOW - 4999, outcome: "FIRED", detail: null }],
				unfired: []
			});
	});

	it("several late within the grace (a restart): skip fires the newest only, fire_once catches up once", () => {
		const skip = planLate(lateRuns("skip", 4, 500, 100));
		assert.deepEqual(
			skip.fire.map(f => [f.time, f.outcome]),
			[[NOW - 100, "FIRED"]]
		);
		assert.deepEqual(
			skip.unfired.map(u => u.outcome),
			["MISSED", "MISSED", "MISSED"]
		);
		const once = planLate(lateRuns("fire_once", 4, 500, 100));
		assert.deepEqual(
			once.fire.map(f => [f.time, f.outcome]),
			[[NOW - 100, "CAUGHT_UP"]]
		);
		assert.match(once.fire[0].detail!, /fire_once, 4 missed/);
		assert.equal(once.unfired.length, 3);
	});

	it("older than the grace: skip fires none, fire_once the newest, catch_up each within its window", () => {
		assert.deepEqual(planLate(lateRuns("skip", 3, 1000, 6000)).fire, []);
		assert.equal(planLate(lateRuns("skip", 1, 0, 5001)).unfired[0].detail, "not fired in time; policy skip");
		assert.deepEqual(
			planLate(lateRuns("fire_once", 3, 1000, 6000)).fire.map(f => f.time),
			[NOW - 6000]
		);
		const catchUp = planLate(lateRuns("catch_up", 4, 60_000, 6000, { catchUpWindowMs: 150_000 }));
		assert.deepEqual(
			catchUp.fire.map(f => NOW - f.time),
			[126_000, 66_000, 6000]
		);
		assert.deepEqual(
			catchUp.unfired.map(u => NOW - u.time),
			[186_000]
		);
	});

	it("paused-over fire times are PAUSED and never on time, however recent", () => {
		const plan = planLate(lateRuns("skip", 3, 500, 100, { pausedAt: NOW - 2000, resumedAt: NOW }));
		assert.deepEqual(plan.fire, []);
		assert.deepEqual(
			plan.unfired.map(u => [u.outcome, u.detail]),
			Array(3).fill(["PAUSED", "paused; policy skip"])
		);
		assert.deepEqual(
			planLate(lateRuns("fire_once", 1, 0, 100, { pausedAt: NOW - 2000, resumedAt: NOW })).fire.map(f => f.outcome),
			["CAUGHT_UP"]
		);
	});

	it("fire times counted but not listed are noted on the first unfired row", () => {
		const plan = planLate(lateRuns("skip", 2, 1000, 10_000, { more: 7 }));
		assert.match(plan.unfired[0].detail, /7 earlier fire time\(s\) also missed/);
	});

	it("property: every late fire time is fired or unfired, once; skip and fire_once fire at most one", () => {
		fc.assert(
			fc.property(
				fc.constantFrom("skip", "fire_once", "catch_up"),
				fc.integer({ min: 1, max: 30 }),
				fc.integer({ min: 1, max: 10_000 }),
				fc.integer({ min: 0, max: 20_000 }),
				(policy, count, every, newestLate) => {
					const late = lateRuns(policy, count, every, newestLate);
					const plan = planLate(late);
					const all = [...plan.fire.map(f => f.time), ...plan.unfired.map(u => u.time)].sort((a, b) => a - b);
					assert.deepEqual(all, late.times);
					if (policy !== "catch_up") assert.ok(plan.fire.length <= 1);
					if (policy === "skip") assert.ok(plan.fire.every(f => NOW - f.time <= GRACE));
					if (policy === "fire_once")
						assert.deepEqual(
							plan.fire.map(f => f.time),
							[late.times.at(-1)]
						);
				}
			)
		);
	});
});
