/**
 * The lifecycle's pure transitions, without a broker or a database: every event from every state
 * (a table of cases), then random event sequences (fast-check) that must never reach an illegal
 * state, never lower an attempt, and never leave a final state.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { FINAL_STATUSES, TASK_STATUSES, type TaskStatus } from "../../../../lib/contracts.ts";
import type { TaskRow } from "../../../../models/task.model.ts";
import { transition, type Outcome, type TaskEvent } from "../../../../services/dispatcher/transitions.ts";

const NOW = Date.UTC(2026, 11, 3, 12);

function row(overrides: Partial<TaskRow> = {}): TaskRow {
	return {
		id: "t1",
		status: "PENDING",
		type: "echo",
		payload: null,
		target: "term-a",
		selector: null,
		terminalId: null,
		priority: 5,
		timeoutMs: 300_000,
		ackTimeoutMs: 30_000,
		ttlMs: 86_400_000,
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
		createdAt: NOW,
		updatedAt: NOW,
		deliveredAt: null,
		startedAt: null,
		finishedAt: null,
		expiresAt: NOW + 86_400_000,
		notBefore: null,
		deadlineAt: null,
		...overrides
	};
}

function changed(outcome: Outcome): TaskRow {
	assert.equal(outcome.kind, "change", `expected a change, got ${JSON.stringify(outcome)}`);
	return (outcome as Extract<Outcome, { kind: "change" }>).next;
}

function refusedType(outcome: Outcome): string | undefined {
	assert.equal(outcome.kind, "refused");
	return ((outcome as Extract<Outcome, { kind: "refused" }>).error as { type?: string }).type;
}

const deliver = (terminalId = "term-a"): TaskEvent => ({ kind: "deliver", terminalId, via: "push" });
const ack = (attempt: number, terminalId = "term-a"): TaskEvent => ({ kind: "ack", terminalId, attempt });
const result = (attempt: number, status: "success" | "failed", terminalId = "term-a"): TaskEvent => ({
	kind: "result",
	terminalId,
	attempt,
	status,
	fields: { output: status === "success" ? '{"ok":true}' : null, error: status === "failed" ? "boom" : null }
});

/** The edges of the lifecycle (design §2); a retry is FAILED/TIMEOUT taken back to PENDING. */
const EDGES: ReadonlySet<string> = new Set([
	"PENDING>DELIVERED",
	"PENDING>PENDING",
	"PENDING>EXPIRED",
	"PENDING>CANCELLED",
	"PENDING>PROCESSING",
	"PENDING>COMPLETED",
	"PENDING>FAILED",
	"DELIVERED>PENDING",
	"DELIVERED>PROCESSING",
	"DELIVERED>COMPLETED",
	"DELIVERED>FAILED",
	"DELIVERED>TIMEOUT",
	"DELIVERED>CANCELLED",
	"PROCESSING>COMPLETED",
	"PROCESSING>FAILED",
	"PROCESSING>TIMEOUT",
	"PROCESSING>PENDING",
	"PROCESSING>CANCELLED"
]);

describe("task transitions, case by case", () => {
	it("delivers a PENDING task as the next attempt with an ack deadline; a pull gets its run time too", () => {
		const pushed = changed(transition(row({ attempt: 2 }), deliver(), NOW));
		assert.equal(pushed.status, "DELIVERED");
		assert.equal(pushed.attempt, 3);
		assert.equal(pushed.terminalId, "term-a");
		assert.equal(pushed.deadlineAt, NOW + 30_000);
		const pulled = changed(transition(row(), { kind: "deliver", terminalId: "term-a", via: "pull" }, NOW));
		assert.equal(pulled.deadlineAt, NOW + 30_000 + 300_000);
	});

	it("expects the state it read: a delivery names PENDING and the attempt before it", () => {
		const outcome = transition(row({ attempt: 4 }), deliver(), NOW);
		assert.equal(outcome.kind, "change");
		assert.deepEqual(outcome.kind === "change" && outcome.expect, { status: "PENDING", attempt: 4 });
	});

	it("acks the current attempt only, by its holder; a repeated ack changes nothing", () => {
		const delivered = changed(transition(row(), deliver(), NOW));
		const running = changed(transition(delivered, ack(1), NOW + 5));
		assert.equal(running.status, "PROCESSING");
		assert.equal(running.deadlineAt, NOW + 5 + 300_000);
		assert.equal(transition(running, ack(1), NOW + 6).kind, "same");
		assert.equal(refusedType(transition(delivered, ack(1, "term-b"), NOW)), "TASK_NOT_YOURS");
		assert.equal(refusedType(transition(delivered, ack(2), NOW)), "STALE_ATTEMPT");
		assert.equal(refusedType(transition({ ...delivered, attempt: 3 }, ack(2), NOW)), "STALE_ATTEMPT");
		assert.equal(refusedType(transition(row({ terminalId: "term-a", attempt: 1 }), ack(1), NOW)), "TASK_NOT_STARTED");
	});

	it("completes on success; a repeated result is a duplicate, not an error", () => {
		const running = changed(transition(changed(transition(row(), deliver(), NOW)), ack(1), NOW));
		const done = changed(transition(running, result(1, "success"), NOW + 10));
		assert.equal(done.status, "COMPLETED");
		assert.equal(done.progress, 100);
		assert.equal(done.output, '{"ok":true}');
		assert.deepEqual(transition(done, result(1, "success"), NOW + 11), { kind: "same", duplicate: true });
		assert.equal(refusedType(transition(done, ack(1), NOW)), "TASK_FINISHED");
	});

	it("accepts a result without an ack, and one for a task returned to the queue from its holder", () => {
		const delivered = changed(transition(row(), deliver(), NOW));
		assert.equal(changed(transition(delivered, result(1, "success"), NOW)).status, "COMPLETED");
		const returned = changed(transition(delivered, { kind: "return" }, NOW));
		assert.equal(returned.status, "PENDING");
		assert.equal(returned.attempt, 1, "same attempt");
		assert.equal(changed(transition(returned, result(1, "success"), NOW)).status, "COMPLETED");
	});

	it("retries a failure after its backoff while retries remain, then fails for good", () => {
		const backoff = JSON.stringify({ type: "exponential", delay: 1000 });
		let current = row({ maxRetries: 2, backoff });
		for (const [retry, delay] of [
			[1, 1000],
			[2, 2000]
		]) {
			current = changed(transition(current, deliver(), NOW));
			const outcome = transition(current, result(current.attempt, "failed"), NOW);
			assert.equal(outcome.kind === "change" && outcome.retry?.number, retry);
			current = changed(outcome);
			assert.equal(current.status, "PENDING");
			assert.equal(current.notBefore, NOW + delay);
			assert.equal(current.deliveredAt, null, "a late reply to the failed attempt no longer counts");
			current = changed(transition(current, { kind: "wake" }, NOW + delay));
			assert.equal(current.notBefore, null);
		}
		current = changed(transition(current, deliver(), NOW));
		const failed = changed(transition(current, result(3, "failed"), NOW));
		assert.equal(failed.status, "FAILED");
		assert.equal(failed.retries, 2);
		assert.equal(failed.error, "boom");
	});

	it("a final failure (an oversize result) ends the task even with retries left", () => {
		const delivered = changed(transition(row({ maxRetries: 3 }), deliver(), NOW));
		const event: TaskEvent = {
			kind: "result",
			terminalId: "term-a",
			attempt: 1,
			status: "failed",
			fields: { error: "too big" },
			final: true
		};
		const failed = changed(transition(delivered, event, NOW));
		assert.equal(failed.status, "FAILED");
		assert.equal(failed.retries, 0);
		assert.equal(changed(transition(delivered, { ...event, final: false }, NOW)).status, "PENDING", "without it, a retry");
	});

	it("an ack timeout delivers again until maxDeliveries, then times the attempt out", () => {
		const once = changed(transition(row(), deliver(), NOW));
		assert.equal(changed(transition(once, { kind: "ackTimeout", maxDeliveries: 2 }, NOW)).status, "PENDING");
		const twice = { ...once, deliveries: 2 };
		const timedOut = changed(transition(twice, { kind: "ackTimeout", maxDeliveries: 2 }, NOW));
		assert.equal(timedOut.status, "TIMEOUT");
		assert.match(timedOut.error ?? "", /not acknowledged within 30s after 2 deliveries/);
	});

	it("a run timeout, a ttl and a cancel each end the task with a reason", () => {
		const running = changed(transition(changed(transition(row(), deliver(), NOW)), ack(1), NOW));
		assert.match(changed(transition(running, { kind: "runTimeout" }, NOW)).error ?? "", /timeout of 300s/);
		assert.equal(changed(transition(row(), { kind: "expire" }, NOW)).status, "EXPIRED");
		assert.equal(changed(transition(running, { kind: "cancel" }, NOW)).status, "CANCELLED");
		assert.equal(refusedType(transition(row({ status: "COMPLETED" }), { kind: "cancel" }, NOW)), "TASK_FINISHED");
	});

	it("refuses events that do not apply to the state: a deadline of another state, a second delivery", () => {
		const delivered = changed(transition(row(), deliver(), NOW));
		assert.equal(refusedType(transition(delivered, deliver(), NOW)), "STATE_CONFLICT");
		assert.equal(refusedType(transition(row(), { kind: "runTimeout" }, NOW)), "STATE_CONFLICT");
		assert.equal(refusedType(transition(delivered, { kind: "expire" }, NOW)), "STATE_CONFLICT");
		assert.equal(refusedType(transition(row(), { kind: "return" }, NOW)), "STATE_CONFLICT");
	});
});

const terminalArb = fc.constantFrom("term-a", "term-b");
const eventArb: fc.Arbitrary<TaskEvent> = fc.oneof(
	fc.record({
		kind: fc.constant("deliver" as const),
		terminalId: terminalArb,
		via: fc.constantFrom("push" as const, "pull" as const)
	}),
	fc.constant({ kind: "return" as const }),
	fc.record({ kind: fc.constant("ack" as const), terminalId: terminalArb, attempt: fc.integer({ min: 1, max: 6 }) }),
	fc.record({
		kind: fc.constant("result" as const),
		terminalId: terminalArb,
		attempt: fc.integer({ min: 1, max: 6 }),
		status: fc.constantFrom("success" as const, "failed" as const),
		fields: fc.constant({ error: "e" })
	}),
	fc.record({ kind: fc.constant("ackTimeout" as const), maxDeliveries: fc.integer({ min: 1, max: 3 }) }),
	fc.constant({ kind: "runTimeout" as const }),
	fc.constant({ kind: "expire" as const }),
	fc.constant({ kind: "wake" as const }),
	fc.constant({ kind: "cancel" as const })
);
const startArb = fc.record({
	maxRetries: fc.integer({ min: 0, max: 3 }),
	backoff: fc.constantFrom(
		null,
		JSON.stringify({ type: "fixed", delay: 0 }),
		JSON.stringify({ type: "fixed", delay: 500, jitter: 0.5 })
	),
	target: fc.constantFrom("term-a", null)
});

/** Runs `events` from a fresh task, applying each change; calls `check` with every step. */
function run(
	start: Partial<TaskRow>,
	events: TaskEvent[],
	check: (before: TaskRow, event: TaskEvent, outcome: Outcome, after: TaskRow) => void
): TaskRow {
	let current = row(start);
	let now = NOW;
	for (const event of events) {
		now += 100;
		const outcome = transition(current, event, now, { random: () => 0.5 });
		const after = outcome.kind === "change" ? outcome.next : current;
		check(current, event, outcome, after);
		current = after;
	}
	return current;
}

describe("task transitions, over random event sequences", () => {
	const sequences = fc.array(eventArb, { maxLength: 40 });
	const params = { numRuns: 2000 };

	it("reaches only known states, along the lifecycle's edges", () => {
		fc.assert(
			fc.property(startArb, sequences, (start, events) => {
				run(start, events, (before, _event, _outcome, after) => {
					assert.ok((TASK_STATUSES as readonly string[]).includes(after.status));
					if (after.status !== before.status)
						assert.ok(EDGES.has(`${before.status}>${after.status}`), `${before.status}>${after.status}`);
				});
			}),
			params
		);
	});

	it("never lowers an attempt or a retry count; only a delivery raises the attempt, by one", () => {
		fc.assert(
			fc.property(startArb, sequences, (start, events) => {
				run(start, events, (before, event, _outcome, after) => {
					assert.ok(after.attempt >= before.attempt);
					assert.ok(after.retries >= before.retries);
					assert.ok(after.retries <= after.maxRetries);
					if (after.attempt !== before.attempt) {
						assert.equal(event.kind, "deliver");
						assert.equal(after.attempt, before.attempt + 1);
					}
				});
			}),
			params
		);
	});

	it("never leaves a final state: every later event is refused or changes nothing", () => {
		fc.assert(
			fc.property(startArb, sequences, (start, events) => {
				run(start, events, (before, _event, outcome) => {
					if (FINAL_STATUSES.has(before.status)) assert.notEqual(outcome.kind, "change");
				});
			}),
			params
		);
	});

	it("keeps a holder on every held task, and each change expects the state it was decided on", () => {
		fc.assert(
			fc.property(startArb, sequences, (start, events) => {
				run(start, events, (before, _event, outcome, after) => {
					if (after.status === "DELIVERED" || after.status === "PROCESSING") assert.ok(after.terminalId);
					if (outcome.kind === "change") {
						const statuses: TaskStatus[] = ([] as TaskStatus[]).concat(outcome.expect.status);
						assert.ok(statuses.includes(before.status));
						if (outcome.expect.attempt !== undefined) assert.equal(outcome.expect.attempt, before.attempt);
						if (FINAL_STATUSES.has(after.status)) assert.equal(after.deadlineAt, null);
					}
				});
			}),
			params
		);
	});

	it("accepts a reply only from the terminal holding the current attempt", () => {
		fc.assert(
			fc.property(startArb, sequences, (start, events) => {
				run(start, events, (before, event, outcome) => {
					if ((event.kind === "ack" || event.kind === "result") && outcome.kind === "change") {
						assert.equal(event.attempt, before.attempt);
						assert.equal(event.terminalId, before.terminalId);
					}
				});
			}),
			params
		);
	});
});
