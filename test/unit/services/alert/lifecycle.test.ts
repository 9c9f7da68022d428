import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { decide, type OpenAlert, type RuleTiming } from "../../../../services/alert/lifecycle.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const S = 1000;
const rule: RuleTiming = { for: 0, repeatInterval: 3600, escalation: null };
const firing: OpenAlert = {
	status: "firing",
	startedAt: T0,
	firingAt: T0,
	acknowledgedAt: null,
	lastNotifiedAt: T0,
	escalatedAt: null
};
const pending: OpenAlert = { ...firing, status: "pending", firingAt: null, lastNotifiedAt: null };

describe("alert lifecycle", () => {
	it("opens an alert for a new active series, firing at once when for is 0", () => {
		assert.deepEqual(decide(null, true, rule, T0), { kind: "create", fire: true });
		assert.deepEqual(decide(null, true, { ...rule, for: 60 }, T0), { kind: "create", fire: false });
		assert.deepEqual(decide(null, false, rule, T0), { kind: "nothing" });
	});

	it("fires a pending alert once it has held for `for` seconds", () => {
		const held = { ...rule, for: 60 };
		assert.deepEqual(decide(pending, true, held, T0 + 59 * S), { kind: "nothing" });
		assert.deepEqual(decide(pending, true, held, T0 + 60 * S), { kind: "fire" });
	});

	it("reminds every repeatInterval, and never with repeatInterval 0", () => {
		assert.deepEqual(decide(firing, true, rule, T0 + 3599 * S), { kind: "nothing" });
		assert.deepEqual(decide(firing, true, rule, T0 + 3600 * S), { kind: "remind" });
		assert.deepEqual(decide(firing, true, { ...rule, repeatInterval: 0 }, T0 + 10 ** 9), { kind: "nothing" });
	});

	it("escalates once, escalation.after seconds after firing", () => {
		const esc = { ...rule, escalation: { after: 300, channels: ["c"] } };
		assert.deepEqual(decide(firing, true, esc, T0 + 299 * S), { kind: "nothing" });
		assert.deepEqual(decide(firing, true, esc, T0 + 300 * S), { kind: "escalate" });
		assert.deepEqual(decide({ ...firing, escalatedAt: T0 + 300 * S }, true, esc, T0 + 301 * S), { kind: "nothing" });
	});

	it("resolves: a pending alert silently, a firing one with a notice", () => {
		assert.deepEqual(decide(pending, false, rule, T0), { kind: "resolve", notify: false });
		assert.deepEqual(decide(firing, false, rule, T0), { kind: "resolve", notify: true });
		assert.deepEqual(decide({ ...firing, status: "resolved" }, false, rule, T0), { kind: "nothing" });
	});

	it("never reminds or escalates an acknowledged alert, whatever the timings", () => {
		fc.assert(
			fc.property(
				fc.integer({ min: 0, max: 86_400 }),
				fc.integer({ min: 0, max: 604_800 }),
				fc.integer({ min: 1, max: 604_800 }),
				fc.integer({ min: 0, max: 10 ** 10 }),
				(forS, repeat, after, elapsed) => {
					const timing = { for: forS, repeatInterval: repeat, escalation: { after, channels: ["c"] } };
					const decision = decide({ ...firing, acknowledgedAt: T0 }, true, timing, T0 + elapsed);
					return decision.kind === "nothing";
				}
			)
		);
	});

	it("notifies on resolve exactly when the alert had fired", () => {
		fc.assert(
			fc.property(fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 10 ** 9 }), (wasFiring, acked, elapsed) => {
				const open = { ...(wasFiring ? firing : pending), acknowledgedAt: acked ? T0 : null };
				const decision = decide(open, false, rule, T0 + elapsed);
				return decision.kind === "resolve" && decision.notify === wasFiring;
			})
		);
	});
});
