import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { resolve, isPickStrategy, type Candidate } from "../../../lib/strategies/index.ts";
import { ConsistentHashStrategy } from "../../../lib/strategies/consistent-hash.ts";
import { RandomStrategy } from "../../../lib/strategies/random.ts";

const candidate = (terminalId: string, inflight = 0, concurrency = 1): Candidate => ({
	terminalId,
	labels: {},
	concurrency,
	inflight
});

describe("routing strategies", () => {
	it("resolve() knows the four pick strategies and rejects others", () => {
		for (const name of ["round_robin", "random", "least_busy", "consistent_hash"]) {
			assert.equal(resolve(name).name, name);
			assert.ok(isPickStrategy(name));
		}
		assert.throws(() => resolve("broadcast"), /Unknown routing strategy 'broadcast'/);
		assert.throws(() => resolve("fastest"), /Unknown routing strategy/);
	});

	it("round_robin takes turns per selector and skips full terminals", () => {
		const rr = resolve("round_robin");
		const all = [candidate("b"), candidate("a"), candidate("c")];
		const picks = Array.from({ length: 6 }, () => rr.pick(all, { selectorKey: "s1" }));
		assert.deepEqual(picks, ["a", "b", "c", "a", "b", "c"]);
		assert.equal(rr.pick(all, { selectorKey: "s2" }), "a", "each selector has its own turn");
		assert.equal(rr.pick([candidate("a", 1), candidate("b", 0)], { selectorKey: "s3" }), "b");
		assert.equal(rr.pick([candidate("a", 1)], { selectorKey: "s3" }), null);
		assert.equal(rr.pick([], { selectorKey: "s3" }), null);
	});

	it("least_busy picks the lowest load ratio, then the fewest held", () => {
		const lb = resolve("least_busy");
		assert.equal(lb.pick([candidate("a", 3, 4), candidate("b", 1, 4), candidate("c", 2, 4)], { selectorKey: "" }), "b");
		assert.equal(lb.pick([candidate("a", 2, 4), candidate("b", 1, 2)], { selectorKey: "" }), "b", "equal ratio: fewer held");
		assert.equal(lb.pick([candidate("a", 4, 4)], { selectorKey: "" }), null);
	});

	it("random picks only free terminals", () => {
		fc.assert(
			fc.property(
				fc.array(fc.tuple(fc.nat(3), fc.integer({ min: 1, max: 3 })), { minLength: 1, maxLength: 8 }),
				fc.double({ min: 0, max: 0.999999, noNaN: true }),
				(specs, r) => {
					const cands = specs.map(([inflight, concurrency], i) => candidate(`t${i}`, inflight, concurrency));
					const pick = new RandomStrategy(() => r).pick(cands);
					const free = cands.filter(c => c.inflight < c.concurrency);
					if (free.length === 0) return pick === null;
					return free.some(c => c.terminalId === pick);
				}
			)
		);
	});

	it("consistent_hash keeps a key on one terminal, and only a leaving terminal's keys move", () => {
		const ch = new ConsistentHashStrategy();
		fc.assert(
			fc.property(
				fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 2, maxLength: 8 }),
				fc.array(fc.string(), { minLength: 1, maxLength: 20 }),
				(ids, keys) => {
					const cands = ids.map(id => candidate(id));
					const owners = keys.map(k => ch.owner(cands, k)!.terminalId);
					// Stable under reordering.
					const reversed = [...cands].reverse();
					if (keys.some((k, i) => ch.owner(reversed, k)!.terminalId !== owners[i])) return false;
					// Removing one terminal moves only its own keys.
					const gone = ids[0];
					const rest = cands.filter(c => c.terminalId !== gone);
					return keys.every((k, i) => owners[i] === gone || ch.owner(rest, k)!.terminalId === owners[i]);
				}
			)
		);
	});

	it("consistent_hash waits for a busy owner instead of moving the key", () => {
		const ch = new ConsistentHashStrategy();
		const cands = [candidate("a"), candidate("b"), candidate("c")];
		const owner = ch.owner(cands, "key-1")!.terminalId;
		const busy = cands.map(c => (c.terminalId === owner ? { ...c, inflight: 1 } : c));
		assert.equal(ch.pick(busy, { selectorKey: "", key: "key-1" }), null);
		assert.equal(ch.pick(cands, { selectorKey: "", key: "key-1" }), owner);
	});
});
