import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MemoryTasks } from "../../../../services/dispatcher/memory-tasks.ts";
import { statementsOf } from "../../../../services/dispatcher/replay.ts";
import { DuplicateKeyError } from "../../../../services/dispatcher/sql.ts";
import type { TaskRow } from "../../../../models/task.model.ts";

function row(id: string, extra: Partial<TaskRow> = {}): TaskRow {
	return {
		id,
		status: "PENDING",
		type: "echo",
		payload: null,
		target: "t1",
		selector: null,
		terminalId: null,
		priority: 5,
		timeoutMs: 1000,
		ackTimeoutMs: 1000,
		ttlMs: 1000,
		maxRetries: 0,
		retries: 0,
		backoff: null,
		attempt: 0,
		deliveries: 0,
		idempotencyKey: null,
		groupId: null,
		shardIndex: null,
		shardTotal: null,
		output: null,
		error: null,
		exitCode: null,
		progress: null,
		createdBy: null,
		createdAt: 1,
		updatedAt: 1,
		deliveredAt: null,
		startedAt: null,
		finishedAt: null,
		expiresAt: null,
		notBefore: null,
		deadlineAt: null,
		secrets: null,
		history: null,
		...extra
	} as TaskRow;
}

describe("the task table of degraded mode", () => {
	it("applies a compare-and-set as the database would", () => {
		const memory = new MemoryTasks();
		memory.insert([row("a")]);
		assert.equal(memory.transition("a", { status: "DELIVERED", attempt: 0 }, { status: "PROCESSING" }), false);
		assert.equal(memory.transition("a", { status: "PENDING", attempt: 1 }, { status: "DELIVERED" }), false);
		assert.equal(
			memory.transition("a", { status: "PENDING", attempt: 0 }, { status: "DELIVERED", attempt: 1, terminalId: "t1" }),
			true
		);
		assert.equal(memory.get("a")?.status, "DELIVERED");
		assert.equal(memory.transition("missing", { status: "PENDING" }, { status: "DELIVERED" }), false);
	});

	it("refuses a taken id or idempotency key, and frees a key", () => {
		const memory = new MemoryTasks();
		memory.insert([row("a", { idempotencyKey: "k" })]);
		assert.throws(() => memory.insert([row("a")]), DuplicateKeyError);
		assert.throws(() => memory.insert([row("b", { idempotencyKey: "k" })]), DuplicateKeyError);
		assert.equal(memory.byIdempotencyKey("k")?.id, "a");
		assert.equal(memory.releaseKey("a", "k"), true);
		memory.insert([row("b", { idempotencyKey: "k" })]);
		assert.equal(memory.byIdempotencyKey("k")?.id, "b");
	});

	it("answers the queues in priority then id order, and only what is due", () => {
		const memory = new MemoryTasks();
		memory.insert([
			row("b", { priority: 5 }),
			row("a", { priority: 5 }),
			row("c", { priority: 9 }),
			row("d", { priority: 9, notBefore: 100 }),
			row("e", { target: null })
		]);
		assert.deepEqual(
			memory.pendingPinned("t1", 50, 10).map(r => r.id),
			["c", "a", "b"]
		);
		assert.deepEqual(
			memory.pendingPinned("t1", 100, 2).map(r => r.id),
			["c", "d"]
		);
		assert.deepEqual(
			memory.pendingUnassigned(0, 10).map(r => r.id),
			["e"]
		);
		assert.deepEqual(memory.terminalsWithPending(0), ["t1"]);
	});

	it("keeps the newer of two seeded copies and scans only rows not yet final", () => {
		const memory = new MemoryTasks();
		memory.seed([row("a", { status: "DELIVERED", terminalId: "t1", updatedAt: 5, deadlineAt: 10 })]);
		memory.seed([row("a", { status: "PENDING", updatedAt: 2 })]);
		assert.equal(memory.get("a")?.status, "DELIVERED");
		assert.deepEqual(
			memory.dueIn("DELIVERED", "deadlineAt", 10, 10).map(r => r.id),
			["a"]
		);
		assert.deepEqual(memory.inflight(["t1"]), new Map([["t1", 1]]));
		memory.transition("a", { status: "DELIVERED" }, { status: "COMPLETED", deadlineAt: null });
		assert.deepEqual(memory.dueIn("DELIVERED", "deadlineAt", 10, 10), []);
		assert.deepEqual(memory.countByStatus(), { COMPLETED: 1 });
	});

	it("replays a change only onto a row as old as it expects, and skips a task already there", () => {
		const [insert] = statementsOf({ op: "insert", rows: [row("a")] }, "sqlite");
		assert.match(insert.sql, /^INSERT OR IGNORE INTO tasks/);
		assert.match(statementsOf({ op: "insert", rows: [row("a")] }, "mysql")[0].sql, /^INSERT IGNORE INTO tasks/);
		const [change] = statementsOf(
			{ op: "change", id: "a", expect: { status: "PENDING", attempt: 0 }, changes: { status: "DELIVERED", updatedAt: 7 } },
			"sqlite"
		);
		assert.match(change.sql, /WHERE id = \? AND status IN \(\?\) AND attempt = \? AND updatedAt <= \?$/);
		assert.equal(change.params.at(-1), 7);
	});
});
