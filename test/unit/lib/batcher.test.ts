/** The per-turn batcher every batching mechanism uses: one batch per turn, the busy interval, serial flushes. */
import { describe, it, mock } from "node:test";
import assert from "node:assert/strict";
import { TurnBatcher } from "../../../lib/batcher.ts";

describe("TurnBatcher", () => {
	it("hands what one turn added over once, at the end of the turn", async () => {
		const batches: number[][] = [];
		const batcher = new TurnBatcher<number>({ flush: items => void batches.push(items) });
		for (let i = 0; i < 5; i++) batcher.add(i);
		assert.deepEqual(batches, [], "nothing before the turn ends");
		await new Promise(resolve => setImmediate(resolve));
		assert.deepEqual(batches, [[0, 1, 2, 3, 4]]);
	});

	it("flushes at once when a batch reaches maxItems", () => {
		const batches: number[][] = [];
		const batcher = new TurnBatcher<number>({ maxItems: 3, flush: items => void batches.push(items) });
		for (let i = 0; i < 7; i++) batcher.add(i);
		assert.deepEqual(batches, [
			[0, 1, 2],
			[3, 4, 5]
		]);
		batcher.flushNow();
		assert.deepEqual(batches.at(-1), [6]);
	});

	it("when busy, waits minIntervalMs after the last batch before the next", () => {
		mock.timers.enable({ apis: ["setTimeout", "setImmediate"] });
		try {
			const batches: string[][] = [];
			const batcher = new TurnBatcher<string>({ minIntervalMs: 50, flush: items => void batches.push(items) });
			batcher.add("a");
			mock.timers.tick(0);
			assert.deepEqual(batches, [["a"]]);
			batcher.add("b");
			batcher.add("c");
			mock.timers.tick(1);
			assert.equal(batches.length, 1, "held back while busy");
			mock.timers.tick(60);
			assert.deepEqual(batches, [["a"], ["b", "c"]]);
		} finally {
			mock.timers.reset();
		}
	});

	it("serial: a batch waits for the flush before it; what came meanwhile goes next, together", async () => {
		const order: string[] = [];
		let release!: () => void;
		const first = new Promise<void>(resolve => (release = resolve));
		let calls = 0;
		const batcher = new TurnBatcher<number>({
			serial: true,
			flush: async items => {
				order.push(`start ${items.join(",")}`);
				if (calls++ === 0) await first;
				order.push(`end ${items.join(",")}`);
			}
		});
		batcher.add(1);
		await new Promise(resolve => setImmediate(resolve));
		batcher.add(2);
		batcher.add(3);
		await new Promise(resolve => setImmediate(resolve));
		assert.deepEqual(order, ["start 1"], "the second batch waits");
		release();
		await batcher.drained();
		assert.deepEqual(order, ["start 1", "end 1", "start 2,3", "end 2,3"]);
	});

	it("reports a flush that throws and carries on", async () => {
		const errors: unknown[] = [];
		const seen: number[][] = [];
		const batcher = new TurnBatcher<number>({
			serial: true,
			onError: err => errors.push(err),
			flush: async items => {
				seen.push(items);
				if (items[0] === 1) throw new Error("disk full");
			}
		});
		batcher.add(1);
		await batcher.drained();
		batcher.add(2);
		await batcher.drained();
		assert.equal((errors[0] as Error).message, "disk full");
		assert.deepEqual(seen, [[1], [2]]);
	});
});
