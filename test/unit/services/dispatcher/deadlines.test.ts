/**
 * The sweep and the replies in hand: an attempt whose terminal has answered, its ack or result
 * still being written (a database slow to answer holds the write), is not timed out for silence;
 * once the write is over, a deadline still passed is enforced again.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { TaskRow } from "../../../../models/task.model.ts";
import type { DispatcherCore } from "../../../../services/dispatcher/core.ts";
import { AttemptSet } from "../../../../services/dispatcher/attempt-set.ts";
import { Deadlines } from "../../../../services/dispatcher/deadlines.ts";
import type { Finishing } from "../../../../services/dispatcher/finishing.ts";

const row = (id: string, status: TaskRow["status"]) =>
	({
		id,
		status,
		attempt: 1,
		terminalId: "t-1",
		deadlineAt: 1,
		deliveries: 1,
		ackTimeoutMs: 100,
		timeoutMs: 100,
		retries: 0,
		maxRetries: 0,
		backoff: null
	}) as TaskRow;

/** A sweep over `rows`, due as they are: the attempts it timed out, by task id. */
function sweeper(rows: TaskRow[], answering: AttemptSet) {
	const timedOut: string[] = [];
	const core = {
		cutOff: false,
		answering,
		settings: { sweepBatch: 100, maxDeliveries: 3, rescanInterval: Infinity, logRetention: 0 },
		store: {
			due: async (status: string, column: string) => (column === "deadlineAt" ? rows.filter(r => r.status === status) : []),
			pruneLogs: async () => undefined
		},
		owns: () => true,
		keyOf: (r: TaskRow) => r.terminalId,
		logger: { error: (...args: unknown[]) => assert.fail(args.join(" ")) }
	} as unknown as DispatcherCore;
	const finishing = {
		tellTerminal: async (_terminalId: string, cancel: { taskId: string }) => void timedOut.push(cancel.taskId),
		end: async () => null,
		routing: { route: async () => undefined, requestDrain: async () => undefined }
	} as unknown as Finishing;
	return { deadlines: new Deadlines(core, finishing, () => undefined), timedOut };
}

describe("the sweep and the replies in hand", () => {
	it("leaves alone a DELIVERED or PROCESSING attempt whose ack or result is being written, and times out the rest", async () => {
		const answering = new AttemptSet();
		const rows = [row("acked", "DELIVERED"), row("silent", "DELIVERED"), row("finishing", "PROCESSING")];
		const { deadlines, timedOut } = sweeper(rows, answering);
		let release!: () => void;
		const held = new Promise<void>(resolve => (release = resolve));
		const ack = answering.during("acked", 1, () => held);
		const result = answering.during("finishing", 1, () => held);
		await deadlines.sweep();
		assert.deepEqual(timedOut, ["silent"]);

		release();
		await Promise.all([ack, result]);
		await deadlines.sweep();
		assert.deepEqual(timedOut.sort(), ["acked", "finishing", "silent", "silent"], "enforced again once the write is over");
	});

	it("counts overlapping replies of one attempt, and only that attempt", async () => {
		const answering = new AttemptSet();
		let release!: () => void;
		const held = new Promise<void>(resolve => (release = resolve));
		const first = answering.during("t", 2, () => held);
		const second = answering.during("t", 2, async () => "done");
		assert.equal(await second, "done");
		assert.equal(answering.has("t", 2), true, "the first is still in hand");
		assert.equal(answering.has("t", 1), false);
		release();
		await first;
		assert.equal(answering.has("t", 2), false);
		await assert.rejects(
			answering.during("t", 3, async () => {
				throw new Error("refused");
			}),
			/refused/
		);
		assert.equal(answering.has("t", 3), false, "unmarked when the reply fails");
	});
});
