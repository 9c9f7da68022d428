import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import fc from "fast-check";
import { frame, Journal, unframe } from "../../../lib/journal.ts";

describe("journal", () => {
	let dir: string;
	beforeEach(() => {
		dir = mkdtempSync(join(tmpdir(), "tern-journal-"));
	});
	afterEach(() => rmSync(dir, { recursive: true, force: true }));

	it("gives back what was written, in order, across a reopen", async () => {
		const journal = await Journal.open<{ n: number }>(dir);
		await Promise.all(Array.from({ length: 100 }, (_, n) => journal.write({ n })));
		assert.equal(journal.records, 100);
		await journal.close();
		const again = await Journal.open<{ n: number }>(dir);
		const [segment] = await again.segments();
		assert.notEqual(again.active, segment, "a reopened journal writes to a new segment");
		const read = await again.read(segment);
		assert.deepEqual(
			read.records.map(r => r.n),
			Array.from({ length: 100 }, (_, n) => n)
		);
		assert.equal(read.discardedBytes, 0);
	});

	it("leaves out a torn tail and a record whose checksum does not match", async () => {
		const journal = await Journal.open<{ text: string }>(dir);
		for (const text of ["one", "two", "three"]) await journal.write({ text });
		await journal.close();
		const [segment] = await journal.segments();
		const file = join(dir, readdirSync(dir)[0]);
		const size = statSync(file).size;
		truncateSync(file, size - 3);
		assert.deepEqual(
			(await journal.read(segment)).records.map(r => r.text),
			["one", "two"]
		);
		const bytes = readFileSync(file);
		// A byte inside the second record's body.
		bytes[frame({ text: "one" }).length + 10] ^= 0xff;
		writeFileSync(file, bytes);
		const altered = await journal.read(segment);
		assert.deepEqual(
			altered.records.map(r => r.text),
			["one"]
		);
		assert.ok(altered.discardedBytes > 0);
	});

	it("rotates past its segment size and removes a segment once dealt with", async () => {
		const journal = await Journal.open<{ pad: string }>(dir, { segmentBytes: 1000 });
		for (let i = 0; i < 20; i++) await journal.write({ pad: "x".repeat(200) });
		const segments = await journal.segments();
		assert.ok(segments.length >= 4, `${segments.length} segments`);
		let total = 0;
		for (const segment of segments) total += (await journal.read(segment)).records.length;
		assert.equal(total, 20);
		await journal.remove(segments[0]);
		assert.equal((await journal.segments()).length, segments.length - 1);
		await journal.close();
	});

	it("writes what comes while a segment closes to the next one, never to the closed one", async () => {
		const journal = await Journal.open<{ n: number }>(dir);
		await journal.write({ n: 1 });
		const rotating = journal.rotate();
		// Nothing is pending, so rotate() is closing the file by the next microtask: written then, in
		// the replay's moment, when the closed segment is read and then removed.
		await Promise.resolve();
		await Promise.resolve();
		const during = journal.write({ n: 2 });
		const closed = await rotating;
		await during;
		assert.deepEqual(
			(await journal.read(closed)).records.map(r => r.n),
			[1],
			"the closed segment holds what came before"
		);
		await journal.remove(closed);
		await journal.write({ n: 3 });
		const left = await journal.segments();
		assert.deepEqual(left, [journal.active]);
		assert.deepEqual(
			(await journal.read(journal.active)).records.map(r => r.n),
			[2, 3],
			"nothing is lost with the closed segment"
		);
		await journal.close();
	});

	it("frames any value so that it reads back the same, and any cut reads back a prefix", () => {
		fc.assert(
			fc.property(fc.array(fc.jsonValue(), { maxLength: 20 }), fc.nat(), (values, cut) => {
				const bytes = Buffer.concat(values.map(frame));
				const whole = unframe(bytes);
				assert.deepEqual(whole.records, JSON.parse(JSON.stringify(values)));
				const part = unframe(bytes.subarray(0, cut % (bytes.length + 1)));
				assert.deepEqual(part.records, whole.records.slice(0, part.records.length));
			})
		);
	});
});
