/**
 * The slot book: what this replica believes of the terminals it owns, so that a drain needs no
 * query to know a terminal's free slots or that its queue is empty. Every belief is a hint: a
 * change is still a compare-and-set in the database, and a failed one, a rescan or a change of
 * owners makes the book count again. One owner for all of it, so no caller keeps two fields in
 * step by hand.
 */
import type { TaskRow } from "../../models/task.model.ts";
import { holder } from "./transitions.ts";

export class SlotBook {
	/**
	 * Tasks each owned terminal holds (DELIVERED or PROCESSING), counted once from the database and
	 * kept by this replica's own changes. A slot is taken (+1) before a delivery is written, so
	 * pushes decided concurrently never exceed the terminal's concurrency.
	 */
	private readonly held = new Map<string, number>();
	/** Owned terminals whose own queue was found empty and has had nothing queued here since. */
	private readonly emptyQueues = new Set<string>();
	/** Bumped whenever a task is queued for a terminal, so a drain knows its "empty" is still true. */
	private readonly queued = new Map<string, number>();
	/** Selector tasks may be waiting: false once a scan found none and none was queued since. */
	private selectorsWaiting = true;
	private selectorEpoch = 0;

	/** Owners changed: what was known of every terminal is counted again. */
	reset(): void {
		this.held.clear();
		this.emptyQueues.clear();
		this.selectorsWaiting = true;
	}

	/** What was known of one terminal is counted again (a new session, another replica's word). */
	forget(terminalId: string): void {
		this.held.delete(terminalId);
		this.emptyQueues.delete(terminalId);
	}

	/** Its queue may not be empty any more (its record changed, a rescan found work). */
	mayHaveWork(terminalId: string): void {
		this.emptyQueues.delete(terminalId);
	}

	// ------------------------------------------------------------ slots

	/** The held count, when known. */
	heldBy(terminalId: string): number | undefined {
		return this.held.get(terminalId);
	}

	/** Sets a count read from the database, unless a change made meanwhile has set one already. */
	counted(terminalId: string, count: number): number {
		const known = this.held.get(terminalId);
		if (known !== undefined) return known;
		this.held.set(terminalId, count);
		return count;
	}

	/** Takes a slot of a terminal whose count is known; false when it has none free. */
	reserve(terminalId: string, concurrency: number): boolean {
		const held = this.held.get(terminalId);
		if (held === undefined || held >= concurrency) return false;
		this.held.set(terminalId, held + 1);
		return true;
	}

	/** Gives back a slot taken by `reserve` that no write used. */
	release(terminalId: string): void {
		this.adjust(terminalId, -1);
	}

	/**
	 * A slot for a new task, taken now, when it may skip the queue: its terminal's queue is known
	 * empty and the terminal has a free slot.
	 */
	claimDirect(terminalId: string, concurrency: number): boolean {
		if (!this.emptyQueues.has(terminalId)) return false;
		return this.reserve(terminalId, concurrency);
	}

	// ------------------------------------------------------------ queues

	/** A task is (again) PENDING: its terminal's queue is not empty, or selector tasks wait. */
	queuedFor(row: Pick<TaskRow, "target">): void {
		if (row.target) {
			this.emptyQueues.delete(row.target);
			this.queued.set(row.target, (this.queued.get(row.target) ?? 0) + 1);
		} else this.selectorsQueued();
	}

	/** Selector tasks wait, whatever was believed. */
	selectorsQueued(): void {
		this.selectorsWaiting = true;
		this.selectorEpoch++;
	}

	isEmpty(terminalId: string): boolean {
		return this.emptyQueues.has(terminalId);
	}

	/** A mark to pass to `foundEmpty`: changes when anything is queued for the terminal. */
	queueMark(terminalId: string): number | undefined {
		return this.queued.get(terminalId);
	}

	/** A scan found the queue empty: believed so unless something was queued since `mark`. */
	foundEmpty(terminalId: string, mark: number | undefined): void {
		if (this.queued.get(terminalId) === mark) this.emptyQueues.add(terminalId);
	}

	get mayHaveSelectorTasks(): boolean {
		return this.selectorsWaiting;
	}

	selectorMark(): number {
		return this.selectorEpoch;
	}

	foundNoSelectorTasks(mark: number): void {
		if (this.selectorEpoch === mark) this.selectorsWaiting = false;
	}

	// ------------------------------------------------------------ changes

	/**
	 * A change was written: the held counts follow the task from `before` to `after`. `reserved`:
	 * a slot already taken for the terminal the change hands the task to.
	 */
	written(before: TaskRow, after: TaskRow, reserved?: string): void {
		const was = holder(before);
		const is = holder(after);
		if (was !== is) {
			if (was) this.adjust(was, -1);
			if (is && is !== reserved) this.adjust(is, +1);
		}
		if (reserved && reserved !== is) this.adjust(reserved, -1);
		if (after.status === "PENDING" && before.status !== "PENDING") this.queuedFor(after);
	}

	private adjust(terminalId: string, delta: number): void {
		const held = this.held.get(terminalId);
		if (held !== undefined) this.held.set(terminalId, Math.max(0, held + delta));
	}
}
