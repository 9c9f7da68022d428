/**
 * The task table in memory, for degraded mode: the rows this replica had at hand when the
 * database went away (its recent rows) and every task submitted since. It answers the reads on
 * the task's path (a row, the queues, the deadlines, what a terminal holds) and applies the same
 * compare-and-set the database would, so the lifecycle goes on unchanged; each write is also
 * journalled, and the journal, not this table, is what reaches the database later.
 */
import { FINAL_STATUSES as FINAL, type TaskStatus } from "../../lib/contracts.ts";
import type { TaskRow } from "../../models/task.model.ts";
import { DuplicateKeyError } from "./sql.ts";
import type { Expect } from "./transitions.ts";

function byQueueOrder(a: TaskRow, b: TaskRow): number {
	return b.priority - a.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export class MemoryTasks {
	private readonly rows = new Map<string, TaskRow>();
	/** Rows not final yet: the only ones a queue or a deadline scan has to look at. */
	private readonly open = new Set<string>();
	private readonly keys = new Map<string, string>();

	get size(): number {
		return this.rows.size;
	}

	/** Rows known before the outage; of two copies of a row, the one changed last is kept. */
	seed(rows: Iterable<TaskRow>): void {
		for (const row of rows) {
			const held = this.rows.get(row.id);
			if (!held || Number(held.updatedAt) < Number(row.updatedAt)) this.put({ ...row });
		}
	}

	/** Puts a row back as it was (a write whose journal record could not be written). */
	restore(row: TaskRow): void {
		this.put({ ...row });
	}

	forget(id: string): void {
		const row = this.rows.get(id);
		if (row?.idempotencyKey) this.keys.delete(row.idempotencyKey);
		this.rows.delete(id);
		this.open.delete(id);
	}

	clear(): void {
		this.rows.clear();
		this.open.clear();
		this.keys.clear();
	}

	has(id: string): boolean {
		return this.rows.has(id);
	}

	get(id: string): TaskRow | null {
		const row = this.rows.get(id);
		return row ? { ...row } : null;
	}

	insert(rows: TaskRow[]): void {
		for (const row of rows) {
			if (this.rows.has(row.id)) throw new DuplicateKeyError(`Task '${row.id}' exists`);
			if (row.idempotencyKey && this.keys.has(row.idempotencyKey))
				throw new DuplicateKeyError(`Idempotency key '${row.idempotencyKey}' is taken`);
		}
		for (const row of rows) this.put({ ...row });
	}

	/** The compare-and-set: true when the row was as expected and now carries `changes`. */
	transition(id: string, expect: Expect, changes: Partial<TaskRow>): boolean {
		const row = this.rows.get(id);
		if (!row) return false;
		const statuses = Array.isArray(expect.status) ? expect.status : [expect.status];
		if (!statuses.includes(row.status)) return false;
		if (expect.attempt !== undefined && row.attempt !== expect.attempt) return false;
		const next = { ...row };
		for (const [column, value] of Object.entries(changes))
			if (value !== undefined) (next as Record<string, unknown>)[column] = value;
		this.put(next);
		return true;
	}

	releaseKey(id: string, key: string): boolean {
		const row = this.rows.get(id);
		if (!row || row.idempotencyKey !== key) return false;
		this.keys.delete(key);
		this.rows.set(id, { ...row, idempotencyKey: null });
		return true;
	}

	byIdempotencyKey(key: string): TaskRow | null {
		const id = this.keys.get(key);
		return id ? this.get(id) : null;
	}

	byGroup(groupId: string): TaskRow[] {
		return this.scan(row => row.groupId === groupId, true).sort((a, b) => (a.id < b.id ? -1 : 1));
	}

	statuses(ids: string[]): Map<string, TaskStatus> {
		const found = new Map<string, TaskStatus>();
		for (const id of ids) {
			const row = this.rows.get(id);
			if (row) found.set(id, row.status);
		}
		return found;
	}

	pendingPinned(terminalId: string, now: number, limit: number): TaskRow[] {
		return this.pending(row => row.target === terminalId, now, limit);
	}

	pendingUnassigned(now: number, limit: number): TaskRow[] {
		return this.pending(row => row.target === null, now, limit);
	}

	terminalsWithPending(now: number): string[] {
		const ids = new Set<string>();
		for (const row of this.scan(row => row.status === "PENDING" && row.target !== null && due(row, now)))
			ids.add(row.target!);
		return [...ids];
	}

	inflight(terminalIds: string[]): Map<string, number> {
		const counts = new Map(terminalIds.map(id => [id, 0]));
		for (const row of this.scan(row => isHeld(row.status) && row.terminalId !== null && counts.has(row.terminalId)))
			counts.set(row.terminalId!, counts.get(row.terminalId!)! + 1);
		return counts;
	}

	queuedFor(terminalIds: string[]): Map<string, number> {
		const counts = new Map(terminalIds.map(id => [id, 0]));
		for (const row of this.scan(row => row.status === "PENDING" && row.target !== null && counts.has(row.target)))
			counts.set(row.target!, counts.get(row.target!)! + 1);
		return counts;
	}

	queueTops(terminalIds: string[]): Map<string, number> {
		const wanted = new Set(terminalIds);
		const tops = new Map<string, number>();
		for (const row of this.rows.values()) {
			const holder = row.status === "PENDING" ? row.target : row.status === "DELIVERED" ? row.terminalId : null;
			if (holder === null || !wanted.has(holder)) continue;
			tops.set(holder, Math.max(tops.get(holder) ?? Number.NEGATIVE_INFINITY, row.priority));
		}
		return tops;
	}

	dueIn(status: TaskStatus, column: "deadlineAt" | "expiresAt" | "notBefore", now: number, limit: number): TaskRow[] {
		return this.scan(row => row.status === status && row[column] !== null && Number(row[column]) <= now)
			.sort((a, b) => Number(a[column]) - Number(b[column]))
			.slice(0, limit);
	}

	delivered(terminalId: string | null, before?: number): TaskRow[] {
		return this.scan(
			row =>
				row.status === "DELIVERED" &&
				(terminalId === null || row.terminalId === terminalId) &&
				(before === undefined || Number(row.deliveredAt) < before)
		);
	}

	countByStatus(): Record<string, number> {
		const counts: Record<string, number> = {};
		for (const row of this.rows.values()) counts[row.status] = (counts[row.status] ?? 0) + 1;
		return counts;
	}

	private put(row: TaskRow): void {
		const before = this.rows.get(row.id);
		if (before?.idempotencyKey && before.idempotencyKey !== row.idempotencyKey) this.keys.delete(before.idempotencyKey);
		this.rows.set(row.id, row);
		if (row.idempotencyKey) this.keys.set(row.idempotencyKey, row.id);
		if (FINAL.has(row.status)) this.open.delete(row.id);
		else this.open.add(row.id);
	}

	private pending(match: (row: TaskRow) => boolean, now: number, limit: number): TaskRow[] {
		return this.scan(row => row.status === "PENDING" && due(row, now) && match(row))
			.sort(byQueueOrder)
			.slice(0, limit);
	}

	/** Copies of the rows that match; only open rows unless `all`. */
	private scan(match: (row: TaskRow) => boolean, all = false): TaskRow[] {
		const out: TaskRow[] = [];
		if (all) {
			for (const row of this.rows.values()) if (match(row)) out.push({ ...row });
			return out;
		}
		for (const id of this.open) {
			const row = this.rows.get(id)!;
			if (match(row)) out.push({ ...row });
		}
		return out;
	}
}

function due(row: TaskRow, now: number): boolean {
	return row.notBefore === null || Number(row.notBefore) <= now;
}

function isHeld(status: TaskStatus): boolean {
	return status === "DELIVERED" || status === "PROCESSING";
}
