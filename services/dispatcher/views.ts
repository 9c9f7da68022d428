/**
 * Rows → what the API, the sockets and events show. Seconds and ISO dates outside; ms inside.
 * Secrets: "***" in every view (the stored payload has "***" at its sensitive paths already);
 * opened only in the push to the terminal that runs the task.
 */
import type { Backoff, Selector, TaskPush, TaskQueryView, TaskStatusEvent, TaskView } from "../../lib/contracts.ts";
import type { TaskRow } from "../../models/task.model.ts";
import type { Keyring } from "../../lib/keyring.ts";
import { openSecrets, redactedSecrets } from "../../lib/task-secrets.ts";

function iso(ms: number | null): string | null {
	return ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString();
}

function json<T>(text: string | null): T | null {
	return text === null || text === undefined ? null : (JSON.parse(text) as T);
}

/**
 * What the terminal that runs the task is sent: its secrets opened, its payload's sensitive
 * values back in place. Throws MissingKeyError when they are sealed with a key no longer configured.
 */
export function toPush(row: TaskRow, keyring: Keyring): TaskPush {
	const push: TaskPush = {
		taskId: row.id,
		attempt: row.attempt,
		type: row.type,
		payload: json(row.payload),
		priority: row.priority,
		timeout: row.timeoutMs / 1000,
		ackTimeout: row.ackTimeoutMs / 1000,
		createdAt: iso(row.createdAt)!
	};
	if (row.shardTotal !== null) {
		push.shardIndex = row.shardIndex!;
		push.shardTotal = row.shardTotal;
	}
	if (row.secrets) {
		const opened = openSecrets(row.secrets, push.payload, keyring);
		push.payload = opened.payload;
		if (Object.keys(opened.secrets).length > 0) push.secrets = opened.secrets;
	}
	return push;
}

export function toQueryView(row: TaskRow): TaskQueryView {
	return {
		taskId: row.id,
		status: row.status,
		data: json(row.output),
		error: row.error,
		exitCode: row.exitCode,
		attempt: row.attempt,
		progress: row.progress,
		createdAt: iso(row.createdAt)!,
		updatedAt: iso(row.updatedAt)!,
		deliveredAt: iso(row.deliveredAt),
		startedAt: iso(row.startedAt),
		finishedAt: iso(row.finishedAt)
	};
}

export function toView(row: TaskRow): TaskView {
	return {
		...toQueryView(row),
		terminalId: row.terminalId ?? row.target,
		selector: json<Selector>(row.selector),
		type: row.type,
		payload: json(row.payload),
		priority: row.priority,
		timeout: row.timeoutMs / 1000,
		ackTimeout: row.ackTimeoutMs / 1000,
		ttl: Number(row.ttlMs) / 1000,
		maxRetries: row.maxRetries,
		retries: row.retries,
		backoff: json<Backoff>(row.backoff),
		idempotencyKey: row.idempotencyKey,
		groupId: row.groupId,
		shardIndex: row.shardIndex,
		shardTotal: row.shardTotal,
		expiresAt: iso(row.expiresAt),
		notBefore: iso(row.notBefore),
		deadlineAt: iso(row.deadlineAt),
		createdBy: row.createdBy ?? null,
		...redactedSecrets(row.secrets ?? null)
	};
}

export function toStatusEvent(row: TaskRow, extra: Partial<TaskStatusEvent> = {}): TaskStatusEvent {
	const event: TaskStatusEvent = {
		taskId: row.id,
		status: row.status,
		attempt: row.attempt,
		terminalId: row.terminalId ?? row.target,
		at: iso(row.updatedAt)!,
		...extra
	};
	if (row.status === "COMPLETED" || row.status === "FAILED" || row.status === "TIMEOUT") {
		event.data = json(row.output);
		event.error = row.error;
		event.exitCode = row.exitCode;
		event.phases = phasesOf(row);
	}
	return event;
}

/** Each phase of an ended task that it went through, ms. */
function phasesOf(row: TaskRow): NonNullable<TaskStatusEvent["phases"]> {
	const created = Number(row.createdAt);
	const delivered = row.deliveredAt == null ? null : Number(row.deliveredAt);
	const started = row.startedAt == null ? null : Number(row.startedAt);
	const finished = row.finishedAt == null ? Number(row.updatedAt) : Number(row.finishedAt);
	const phases: NonNullable<TaskStatusEvent["phases"]> = { total: finished - created };
	if (delivered !== null) phases.queue = delivered - created;
	if (delivered !== null && started !== null) phases.start = started - delivered;
	if (started !== null) phases.run = finished - started;
	return phases;
}
