/**
 * services/terminals/drains.ts without a broker: a draining terminal is told to disconnect once,
 * when it holds nothing, and a task's end that arrives while a check runs is not missed.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Context } from "moleculer";
import { Drains } from "../../../../services/terminals/drains.ts";

const ctx = {} as Context;

/** Steps whose running count the test sets, and whose count query it may hold open. */
function steps() {
	const state = { running: 0, disconnects: [] as string[], gate: null as Promise<void> | null };
	return {
		state,
		steps: {
			running: async () => {
				const seen = state.running;
				if (state.gate) await state.gate;
				return seen;
			},
			disconnect: async (_ctx: Context, id: string) => {
				state.disconnects.push(id);
			}
		}
	};
}

describe("drains", () => {
	it("disconnect a draining terminal once it holds nothing, and only once", async () => {
		const { state, steps: s } = steps();
		const drains = new Drains(s);
		await drains.settle(ctx, "t1");
		assert.deepEqual(state.disconnects, [], "not draining: nothing happens");

		drains.set("t1", true);
		state.running = 1;
		await drains.settle(ctx, "t1");
		assert.deepEqual(state.disconnects, []);
		state.running = 0;
		await drains.settle(ctx, "t1");
		await drains.settle(ctx, "t1");
		assert.deepEqual(state.disconnects, ["t1"]);

		drains.set("t1", true);
		await drains.settle(ctx, "t1");
		assert.deepEqual(state.disconnects, ["t1"], "the same drain, seen again from the registry");
		drains.set("t1", true, true);
		await drains.settle(ctx, "t1");
		assert.deepEqual(state.disconnects, ["t1", "t1"], "drained again: told again");
	});

	it("check again when a task ends during a check", async () => {
		const { state, steps: s } = steps();
		const drains = new Drains(s);
		drains.set("t1", true);
		state.running = 1;
		let open!: () => void;
		state.gate = new Promise(resolve => (open = resolve));
		const first = drains.settle(ctx, "t1");
		// The last task ends while the first check (which saw 1) is still waiting for its answer.
		state.running = 0;
		const second = drains.settle(ctx, "t1");
		state.gate = null;
		open();
		await Promise.all([first, second]);
		assert.deepEqual(state.disconnects, ["t1"]);
	});

	it("stop when undrained, even mid-check", async () => {
		const { state, steps: s } = steps();
		const drains = new Drains(s);
		drains.set("t1", true);
		let open!: () => void;
		state.gate = new Promise(resolve => (open = resolve));
		const check = drains.settle(ctx, "t1");
		drains.set("t1", false);
		open();
		await check;
		assert.deepEqual(state.disconnects, []);
		assert.equal(drains.has("t1"), false);
	});
});
