/** One insert per idempotency key at a time: a second waits for the first and does not write. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { KeyFlights } from "../../../../services/dispatcher/key-flights.ts";

describe("KeyFlights", () => {
	it("lets a second insert of a key wait for the first, and answers busy without running it", async () => {
		const flights = new KeyFlights();
		let release!: () => void;
		const ran: string[] = [];
		const first = flights.run(["k"], () => {
			ran.push("first");
			return new Promise<void>(resolve => (release = resolve));
		});
		let secondDone = false;
		const second = flights.run(["other", "k"], async () => void ran.push("second")).finally(() => (secondDone = true));
		await Promise.resolve();
		assert.equal(secondDone, false, "the second waits while the first is out");
		release();
		assert.equal(await first, "done");
		assert.equal(await second, "busy");
		assert.deepEqual(ran, ["first"]);
		assert.equal(await flights.run(["k"], async () => void ran.push("third")), "done", "the key is free again");
		assert.deepEqual(ran, ["first", "third"]);
	});

	it("frees the key when the insert fails, and passes its error to its own caller only", async () => {
		const flights = new KeyFlights();
		const failing = flights.run(["k"], async () => {
			throw new Error("database away");
		});
		const waiting = flights.run(["k"], async () => assert.fail("not run while the first is out"));
		await assert.rejects(failing, /database away/);
		assert.equal(await waiting, "busy");
		assert.equal(await flights.run(["k"], async () => undefined), "done");
	});

	it("runs inserts without keys, or with different keys, side by side", async () => {
		const flights = new KeyFlights();
		let open = 0;
		let most = 0;
		const work = async () => {
			most = Math.max(most, ++open);
			await new Promise(resolve => setImmediate(resolve));
			open--;
		};
		assert.deepEqual(await Promise.all([flights.run([], work), flights.run(["a"], work), flights.run(["b"], work)]), [
			"done",
			"done",
			"done"
		]);
		assert.equal(most, 3);
	});
});
