/** The slot book: held counts follow each written change, empty-queue hints fall with every queueing. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { TaskRow } from "../../../../models/task.model.ts";
import { SlotBook } from "../../../../services/dispatcher/book.ts";

const task = (status: TaskRow["status"], terminalId: string | null, target: string | null = "a") =>
	({ status, terminalId, target }) as TaskRow;

describe("SlotBook", () => {
	it("reserves up to the concurrency of a terminal whose count is known, and no further", () => {
		const book = new SlotBook();
		assert.equal(book.reserve("a", 2), false, "an uncounted terminal is counted first");
		book.counted("a", 1);
		assert.equal(book.reserve("a", 2), true);
		assert.equal(book.reserve("a", 2), false);
		book.release("a");
		assert.equal(book.heldBy("a"), 1);
	});

	it("keeps a count set by a change made while the database was counting", () => {
		const book = new SlotBook();
		book.counted("a", 3);
		assert.equal(book.counted("a", 0), 3);
	});

	it("moves held counts with each written change, using a reserved slot once", () => {
		const book = new SlotBook();
		book.counted("a", 0);
		book.counted("b", 0);
		assert.ok(book.reserve("a", 5));
		book.written(task("PENDING", null), task("DELIVERED", "a"), "a");
		assert.equal(book.heldBy("a"), 1, "the reserved slot is the delivery's");
		book.written(task("DELIVERED", "a"), task("PROCESSING", "a"));
		assert.equal(book.heldBy("a"), 1);
		book.written(task("PROCESSING", "a"), task("COMPLETED", "a"));
		assert.equal(book.heldBy("a"), 0);
		book.written(task("PENDING", null), task("DELIVERED", "b"));
		assert.equal(book.heldBy("b"), 1);
		assert.ok(book.reserve("a", 5));
		book.written(task("PENDING", null), task("PENDING", null), "a");
		assert.equal(book.heldBy("a"), 0, "a reserved slot no write used is given back");
	});

	it("believes a queue empty only if nothing was queued since the scan began", () => {
		const book = new SlotBook();
		const mark = book.queueMark("a");
		book.queuedFor({ target: "a" });
		book.foundEmpty("a", mark);
		assert.equal(book.isEmpty("a"), false, "a task queued during the scan keeps the queue open");
		book.foundEmpty("a", book.queueMark("a"));
		assert.equal(book.isEmpty("a"), true);
		book.counted("a", 0);
		assert.equal(book.claimDirect("a", 1), true, "an empty queue and a free slot: the new task skips the queue");
		book.written(task("DELIVERED", "a"), task("PENDING", "a"));
		assert.equal(book.isEmpty("a"), false, "a task back in the queue ends the belief");
	});

	it("tracks whether selector tasks may wait, and forgets everything when owners change", () => {
		const book = new SlotBook();
		const mark = book.selectorMark();
		book.foundNoSelectorTasks(mark);
		assert.equal(book.mayHaveSelectorTasks, false);
		book.queuedFor({ target: null });
		assert.equal(book.mayHaveSelectorTasks, true);
		book.counted("a", 2);
		book.foundEmpty("a", book.queueMark("a"));
		book.reset();
		assert.equal(book.heldBy("a"), undefined);
		assert.equal(book.isEmpty("a"), false);
	});
});
