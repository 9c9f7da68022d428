/** Ownership among replicas: one answer per key, stable while the membership is, departures remembered. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { OwnerCache, Ownership } from "../../../lib/owners.ts";
import { rendezvousOwner } from "../../../lib/strategies/index.ts";

describe("Ownership", () => {
	it("answers the rendezvous owner among the live replicas, itself always among them", () => {
		fc.assert(
			fc.property(fc.uniqueArray(fc.constantFrom("n1", "n2", "n3", "n4"), { minLength: 1 }), fc.string(), (others, key) => {
				const mine = new Ownership("n0");
				mine.set(others);
				assert.equal(mine.ownerOf(key), rendezvousOwner(key, ["n0", ...others]));
				assert.equal(new OwnerCache().owner(key, ["n0", ...others]), mine.ownerOf(key));
			})
		);
	});

	it("says when the membership changed, and which replicas left since last asked", () => {
		const mine = new Ownership("n1");
		assert.equal(mine.set(["n1", "n2", "n3"]), true);
		assert.equal(mine.set(["n3", "n2"]), false, "the same members in another order");
		mine.set(["n1", "n3"]);
		mine.set(["n1"]);
		const departure = mine.takeDeparture();
		assert.deepEqual(departure?.owners, ["n1", "n2", "n3"], "the membership before the first departure");
		assert.deepEqual(departure?.nodeIDs, ["n2", "n3"]);
		assert.equal(mine.takeDeparture(), undefined);
		assert.equal(mine.owns("anything"), true);
	});
});
