import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { decideOverlap } from "../../../../services/scheduler/overlap-policy.ts";

describe("scheduler overlap policy", () => {
	it("nothing running: every policy fires", () => {
		for (const policy of ["allow", "forbid", "replace"] as const)
			assert.deepEqual(decideOverlap(policy, []), { action: "fire" });
	});

	it("a run still going: allow fires, forbid skips naming it, replace cancels it", () => {
		assert.deepEqual(decideOverlap("allow", ["t1"]), { action: "fire" });
		assert.deepEqual(decideOverlap("forbid", ["t1", "t2"]), {
			action: "skip",
			detail: "the previous run (t1, t2) is still running"
		});
		assert.deepEqual(decideOverlap("replace", ["t1"]), {
			action: "replace",
			cancel: ["t1"],
			detail: "replaced the previous run (t1)"
		});
	});
});
