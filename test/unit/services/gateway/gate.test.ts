import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AdmissionGate } from "../../../../services/gateway/gate.ts";

/** GATEWAY_BUSY's data of a refused `enter`. */
function refusal(gate: AdmissionGate): { retryAfterMs: number; reason: string } {
	try {
		gate.enter();
	} catch (err) {
		const e = err as { type: string; code: number; data: { retryAfterMs: number; reason: string } };
		assert.equal(e.type, "GATEWAY_BUSY");
		assert.equal(e.code, 503);
		return e.data;
	}
	throw new Error("let in");
}

describe("the handshake gate", () => {
	it("lets in at most its concurrency at once, and again once one is done", () => {
		const clock = { now: 0 };
		const gate = new AdmissionGate({ admitConcurrency: 2, admitRate: 0 }, { now: () => clock.now, random: () => 0 });
		const first = gate.enter();
		gate.enter();
		assert.equal(gate.inFlight, 2);
		assert.equal(refusal(gate).reason, "busy");
		first();
		first(); // released once only
		assert.equal(gate.inFlight, 1);
		gate.enter();
		assert.equal(gate.inFlight, 2);
	});

	it("lets in at most its rate per second; those refused are spread over the seconds after, with jitter", () => {
		const clock = { now: 10_000 };
		let random = 0;
		const gate = new AdmissionGate({ admitConcurrency: 0, admitRate: 3 }, { now: () => clock.now, random: () => random });
		for (let i = 0; i < 3; i++) gate.enter()();
		clock.now += 400;
		// The 1st..3rd refused come back when this second ends, the 4th..6th a second later, …
		const waits = Array.from({ length: 7 }, () => refusal(gate).retryAfterMs);
		assert.deepEqual(waits, [600, 600, 600, 1600, 1600, 1600, 2600]);
		random = 0.999;
		const jittered = refusal(gate).retryAfterMs;
		assert.ok(jittered > 2600 && jittered <= 2600 * 1.5, `${jittered}`);
		clock.now += 600;
		gate.enter();
	});

	it("never asks for less than 100 ms", () => {
		const clock = { now: 0 };
		const gate = new AdmissionGate({ admitConcurrency: 0, admitRate: 1 }, { now: () => clock.now, random: () => 0 });
		gate.enter();
		clock.now = 995;
		assert.equal(refusal(gate).retryAfterMs, 100);
	});

	it("refuses every handshake while cut off from the cluster, and counts each refusal by why", () => {
		const gate = new AdmissionGate({ admitConcurrency: 0, admitRate: 0 }, { random: () => 0.5 });
		const counted: string[] = [];
		gate.onRefused = reason => counted.push(reason);
		gate.partitioned(4000);
		assert.deepEqual(refusal(gate), { retryAfterMs: 5000, reason: "partition" });
		gate.partitioned(null);
		gate.enter();
		assert.deepEqual(counted, ["partition"]);
	});
});
