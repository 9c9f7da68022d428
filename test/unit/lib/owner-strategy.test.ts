/**
 * The TerminalOwner strategy: a call naming a terminal goes to the replica the dispatcher itself
 * takes for the terminal's owner; one naming none goes round-robin.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Context, Endpoint } from "moleculer";
import { TerminalOwnerStrategy } from "../../../lib/owner-strategy.ts";
import { rendezvousOwner } from "../../../lib/strategies/index.ts";

function endpoints(ids: string[]): Endpoint[] {
	return ids.map(id => ({ id }) as unknown as Endpoint);
}

function strategy(): TerminalOwnerStrategy {
	return new TerminalOwnerStrategy(null as never, null as never, {});
}

describe("TerminalOwner strategy", () => {
	it("picks the rendezvous owner of the terminal named in params or by a terminal's token", () => {
		fc.assert(
			fc.property(
				fc.uniqueArray(fc.stringMatching(/^[a-z0-9-]{1,12}$/), { minLength: 2, maxLength: 6 }),
				fc.stringMatching(/^[a-z0-9-]{1,20}$/),
				(ids, terminalId) => {
					const s = strategy();
					const owner = rendezvousOwner(terminalId, ids);
					const byParams = s.select(endpoints(ids), { params: { terminalId }, meta: {} } as unknown as Context);
					const byToken = s.select(endpoints(ids), {
						params: {},
						meta: { principal: { kind: "terminal", terminalId } }
					} as unknown as Context);
					assert.equal(byParams.id, owner);
					assert.equal(byToken.id, owner);
				}
			)
		);
	});

	it("follows the membership: the owner among the replicas of this call", () => {
		const s = strategy();
		const ctx = { params: { terminalId: "t-1" }, meta: {} } as unknown as Context;
		assert.equal(s.select(endpoints(["a", "b", "c"]), ctx).id, rendezvousOwner("t-1", ["a", "b", "c"]));
		assert.equal(s.select(endpoints(["a", "c"]), ctx).id, rendezvousOwner("t-1", ["a", "c"]));
	});

	it("goes round-robin when no terminal is named", () => {
		const s = strategy();
		const list = endpoints(["a", "b", "c"]);
		const ctx = { params: {}, meta: { principal: { kind: "user", username: "u", role: "admin" } } } as unknown as Context;
		const picked = Array.from({ length: 6 }, () => s.select(list, ctx).id);
		assert.deepEqual(picked, ["a", "b", "c", "a", "b", "c"]);
	});
});
