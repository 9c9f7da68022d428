/**
 * The task lifecycle as pure functions: `transition(row, event, now)` answers the change that the
 * event makes to the row — the fields to write and the state the row must still be in for the
 * write to count (a compare-and-set) — or why the event is refused. No I/O: every other module
 * writes what this one decides, so the state machine can be checked alone, exhaustively.
 *
 *   PENDING ─deliver─▶ DELIVERED ─ack─▶ PROCESSING ─result ok─▶ COMPLETED
 *      ▲ │               │ return            │ result failed / timeout
 *      │ │expire         ▼                   ▼
 *      │ ▼            PENDING (same attempt)  retries left? ─yes─▶ PENDING (after the backoff)
 *      │ EXPIRED                              └─no─▶ FAILED | TIMEOUT
 *   any non-final ─cancel─▶ CANCELLED
 */
import { FINAL_STATUSES, type Backoff, type TaskStatus } from "../../lib/contracts.ts";
import { backoffDelay } from "../../lib/backoff.ts";
import { Errors } from "../../lib/errors.ts";
import type { TaskRow } from "../../models/task.model.ts";

/** The state a row must still be in for a change to apply. */
export interface Expect {
	status: TaskStatus | TaskStatus[];
	attempt?: number;
}

/** What a final result carries into the row. `output` is already JSON text (its size was checked). */
export interface FinalFields {
	output?: string | null;
	error?: string | null;
	exitCode?: number | null;
}

export type TaskEvent =
	/** A terminal takes the task as a new attempt, pushed to its session or pulled over HTTP. */
	| { kind: "deliver"; terminalId: string; via: "push" | "pull" }
	/** The delivery did not reach the terminal (its session closed): back to the queue, same attempt. */
	| { kind: "return" }
	| { kind: "ack"; terminalId: string; attempt: number }
	/** `final`: a failure that would fail again (an oversize result): no retry, whatever remain. */
	| { kind: "result"; terminalId: string; attempt: number; status: "success" | "failed"; fields: FinalFields; final?: boolean }
	/** No ack within ackTimeout: pushed again while deliveries remain, else the attempt timed out. */
	| { kind: "ackTimeout"; maxDeliveries: number }
	| { kind: "runTimeout" }
	| { kind: "expire" }
	/** A retry's backoff is over: the task may be delivered again. */
	| { kind: "wake" }
	| { kind: "cancel" };

export interface Change {
	kind: "change";
	expect: Expect;
	changes: Partial<TaskRow>;
	/** The row once the change is written. */
	next: TaskRow;
	/** Set when the change schedules a retry: its number, why the attempt ended and how (failed or timed out). */
	retry?: { number: number; reason: string; ended: "FAILED" | "TIMEOUT" };
}
/** Nothing to write: the row is already where the event would take it (a repeated ack or result). */
export interface Same {
	kind: "same";
	duplicate?: boolean;
}
export interface Refused {
	kind: "refused";
	error: Error;
}
export type Outcome = Change | Same | Refused;

export interface TransitionOptions {
	/** For the jitter of a retry's backoff. @defaultValue Math.random */
	random?: () => number;
}

function seconds(ms: number): string {
	return `${ms / 1000}s`;
}

function change(row: TaskRow, changes: Partial<TaskRow>, expect?: Expect): Change {
	return {
		kind: "change",
		expect: expect ?? { status: row.status, attempt: row.attempt },
		changes,
		next: { ...row, ...changes }
	};
}

function refused(error: Error): Refused {
	return { kind: "refused", error };
}

export function isFinal(status: TaskStatus): boolean {
	return FINAL_STATUSES.has(status);
}

/** Held by its terminal: counts against the terminal's concurrency. */
export function holder(row: Pick<TaskRow, "status" | "terminalId">): string | null {
	return (row.status === "DELIVERED" || row.status === "PROCESSING") && row.terminalId ? row.terminalId : null;
}

/** A task the terminal holds: DELIVERED/PROCESSING, or returned to the queue from it (same attempt). */
function isHeld(row: TaskRow): boolean {
	return row.status === "DELIVERED" || row.status === "PROCESSING" || (row.status === "PENDING" && row.deliveredAt !== null);
}

/**
 * The attempt a terminal names must be the task's current one and be held by it. An older
 * attempt is STALE_ATTEMPT, whoever sends it; another terminal's task is TASK_NOT_YOURS.
 */
export function holderError(row: TaskRow, terminalId: string, attempt: number): Error | null {
	if (attempt < row.attempt) return Errors.staleAttempt(row.id, attempt, row.attempt);
	if (row.terminalId !== terminalId) return Errors.taskNotYours(row.id, terminalId);
	if (attempt !== row.attempt) return Errors.staleAttempt(row.id, attempt, row.attempt);
	return null;
}

/** Why a reply about a finished task is refused. */
function finishedError(row: TaskRow, attempt: number): Error {
	if (attempt < row.attempt) return Errors.staleAttempt(row.id, attempt, row.attempt);
	return Errors.taskFinished(row.id, row.status);
}

/** A final state, from whatever non-final state the row is in. */
export function finish(row: TaskRow, status: TaskStatus, fields: FinalFields, now: number): Change {
	const changes: Partial<TaskRow> = {
		...fields,
		status,
		finishedAt: now,
		deadlineAt: null,
		expiresAt: null,
		notBefore: null,
		updatedAt: now
	};
	if (status === "COMPLETED") changes.progress = 100;
	return change(row, changes);
}

/** A failed or timed-out attempt: back to PENDING after the backoff while retries remain, else final. */
export function retryOrFinish(
	row: TaskRow,
	status: "FAILED" | "TIMEOUT",
	fields: FinalFields,
	now: number,
	options: TransitionOptions = {}
): Change {
	if (row.retries >= row.maxRetries) return finish(row, status, fields, now);
	const retry = row.retries + 1;
	const backoff = row.backoff === null ? null : (JSON.parse(row.backoff) as Backoff);
	const delay = backoffDelay(backoff, retry, options.random);
	const next = change(row, {
		...fields,
		status: "PENDING",
		retries: retry,
		notBefore: delay > 0 ? now + delay : null,
		expiresAt: now + delay + Number(row.ttlMs),
		deadlineAt: null,
		deliveries: 0,
		// Not held by anyone now: a late reply to this attempt must not count.
		deliveredAt: null,
		startedAt: null,
		progress: null,
		updatedAt: now
	});
	next.retry = { number: retry, reason: fields.error ?? `attempt ${row.attempt} ended ${status}`, ended: status };
	return next;
}

function deliver(row: TaskRow, terminalId: string, via: "push" | "pull", now: number): Outcome {
	if (row.status !== "PENDING") return refused(Errors.stateConflict(row.id));
	// A pulled task has no ack step over plain HTTP: it gets its whole run time before redelivery.
	const deadline = via === "pull" ? now + row.ackTimeoutMs + row.timeoutMs : now + row.ackTimeoutMs;
	return change(
		row,
		{
			status: "DELIVERED",
			terminalId,
			attempt: row.attempt + 1,
			deliveries: row.deliveries + 1,
			deliveredAt: now,
			deadlineAt: deadline,
			expiresAt: null,
			notBefore: null,
			updatedAt: now
		},
		{ status: "PENDING", attempt: row.attempt }
	);
}

function returnToQueue(row: TaskRow, now: number): Outcome {
	if (row.status !== "DELIVERED") return refused(Errors.stateConflict(row.id));
	return change(
		row,
		{ status: "PENDING", deadlineAt: null, expiresAt: now + Number(row.ttlMs), updatedAt: now },
		{ status: "DELIVERED", attempt: row.attempt }
	);
}

function ack(row: TaskRow, terminalId: string, attempt: number, now: number): Outcome {
	if (isFinal(row.status)) return refused(finishedError(row, attempt));
	const wrong = holderError(row, terminalId, attempt);
	if (wrong) return refused(wrong);
	if (row.status === "PROCESSING") return { kind: "same" };
	if (!isHeld(row)) return refused(Errors.taskNotStarted(row.id, row.status));
	return change(
		row,
		{
			status: "PROCESSING",
			startedAt: now,
			deadlineAt: now + row.timeoutMs,
			expiresAt: null,
			deliveries: 0,
			updatedAt: now
		},
		{ status: row.status, attempt }
	);
}

function result(row: TaskRow, event: Extract<TaskEvent, { kind: "result" }>, now: number, options: TransitionOptions): Outcome {
	if (isFinal(row.status)) {
		// The same result twice (a retried send) is acknowledged, not an error.
		if (
			row.attempt === event.attempt &&
			row.terminalId === event.terminalId &&
			(row.status === "COMPLETED" || row.status === "FAILED")
		)
			return { kind: "same", duplicate: true };
		return refused(finishedError(row, event.attempt));
	}
	const wrong = holderError(row, event.terminalId, event.attempt);
	if (wrong) return refused(wrong);
	if (!isHeld(row)) return refused(Errors.taskNotStarted(row.id, row.status));
	const fields: FinalFields = {
		output: event.fields.output ?? null,
		error: event.fields.error ?? null,
		exitCode: event.fields.exitCode ?? null
	};
	if (event.status === "success") return finish(row, "COMPLETED", fields, now);
	return event.final ? finish(row, "FAILED", fields, now) : retryOrFinish(row, "FAILED", fields, now, options);
}

/** The change `event` makes to `row` at `now`, or why it is refused. */
export function transition(row: TaskRow, event: TaskEvent, now: number, options: TransitionOptions = {}): Outcome {
	switch (event.kind) {
		case "deliver":
			return deliver(row, event.terminalId, event.via, now);
		case "return":
			return returnToQueue(row, now);
		case "ack":
			return ack(row, event.terminalId, event.attempt, now);
		case "result":
			return result(row, event, now, options);
		case "ackTimeout": {
			if (row.status !== "DELIVERED") return refused(Errors.stateConflict(row.id));
			if (row.deliveries < event.maxDeliveries) return returnToQueue(row, now);
			const error = `not acknowledged within ${seconds(row.ackTimeoutMs)} after ${row.deliveries} deliveries`;
			return retryOrFinish(row, "TIMEOUT", { error }, now, options);
		}
		case "runTimeout":
			if (row.status !== "PROCESSING") return refused(Errors.stateConflict(row.id));
			return retryOrFinish(
				row,
				"TIMEOUT",
				{ error: `did not finish within its timeout of ${seconds(row.timeoutMs)}` },
				now,
				options
			);
		case "expire":
			if (row.status !== "PENDING") return refused(Errors.stateConflict(row.id));
			return finish(row, "EXPIRED", { error: `not delivered within its ttl of ${seconds(Number(row.ttlMs))}` }, now);
		case "wake":
			if (row.status !== "PENDING") return refused(Errors.stateConflict(row.id));
			return change(row, { notBefore: null }, { status: "PENDING", attempt: row.attempt });
		case "cancel":
			if (isFinal(row.status)) return refused(Errors.taskFinished(row.id, row.status));
			return finish(row, "CANCELLED", { error: "cancelled" }, now);
	}
}
