import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { KeyedLock } from "../../../lib/keyed-lock.ts";

describe("KeyedLock", () => {
	it("runs work of one key one at a time, in order, and other keys alongside", async () => {
		const lock = new KeyedLock();
		const log: string[] = [];
		let release!: () => void;
		const gate = new Promise<void>(resolve => (release = resolve));
		const a1 = lock.run("a", async () => {
			log.push("a1 start");
			await gate;
			log.push("a1 end");
		});
		const a2 = lock.run("a", async () => void log.push("a2"));
		const b1 = lock.run("b", async () => void log.push("b1"));
		await b1;
		assert.deepEqual(log, ["a1 start", "b1"], "b does not wait for a; a2 waits for a1");
		release();
		await Promise.all([a1, a2]);
		assert.deepEqual(log, ["a1 start", "b1", "a1 end", "a2"]);
		assert.equal(lock.size, 0, "idle keys are forgotten");
	});

	it("keeps going after a failure and reports it to its caller", async () => {
		const lock = new KeyedLock();
		await assert.rejects(
			lock.run("k", async () => Promise.reject(new Error("boom"))),
			/boom/
		);
		assert.equal(await lock.run("k", async () => 42), 42);
	});
});
