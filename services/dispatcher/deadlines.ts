/**
 * Deadlines live in the rows, so a restart loses none; the sweep enforces them: ack and run
 * timeouts, ttl expiry and retry wake-ups, each on the replica that owns the task. Now and then
 * it also re-checks the queues of online terminals in case a drain was missed.
 */
import { fields } from "../../lib/log-format.ts";
import type { TaskRow } from "../../models/task.model.ts";
import type { DispatcherCore } from "./core.ts";
import type { Finishing } from "./finishing.ts";
import { transition, type TaskEvent } from "./transitions.ts";

/** Selector tasks routed again per rescan. */
const RESCAN_SELECTORS = 200;
const PRUNE_INTERVAL_MS = 3_600_000;

export class Deadlines {
	private readonly core: DispatcherCore;
	private readonly finishing: Finishing;
	private readonly onPrune: () => void;
	private sweeping = false;
	private lastPrune = 0;
	private lastRescan = 0;

	/** `onPrune`: called when old output is pruned (the hourly housekeeping). */
	constructor(core: DispatcherCore, finishing: Finishing, onPrune: () => void) {
		this.core = core;
		this.finishing = finishing;
		this.onPrune = onPrune;
	}

	get isSweeping(): boolean {
		return this.sweeping;
	}

	async sweep(): Promise<void> {
		if (this.sweeping || this.core.cutOff) return;
		this.sweeping = true;
		const { core } = this;
		try {
			const now = Date.now();
			const batch = core.settings.sweepBatch;
			const due = async (status: TaskRow["status"], column: "deadlineAt" | "expiresAt" | "notBefore") =>
				(await core.store.due(status, column, now, batch)).filter(row => core.owns(core.keyOf(row)));
			// A held task whose terminal has answered, its reply still being written, has not gone silent.
			const held = async (status: "DELIVERED" | "PROCESSING") =>
				(await due(status, "deadlineAt")).filter(row => !core.answering.has(row.id, row.attempt));
			// Rows side by side: their writes share commits, and a late row does not wait for the others.
			const each = async (rows: TaskRow[], handle: (row: TaskRow) => Promise<unknown>) => {
				await Promise.all(
					rows.map(row =>
						handle(row).catch(err => core.logger.error(fields({ taskId: row.id }), "Deadline of", row.id, err))
					)
				);
			};
			const maxDeliveries = core.settings.maxDeliveries;
			await each(await held("DELIVERED"), row => this.timedOut(row, { kind: "ackTimeout", maxDeliveries }, now));
			await each(await held("PROCESSING"), row => this.timedOut(row, { kind: "runTimeout" }, now));
			await each(await due("PENDING", "expiresAt"), row => this.apply(row, { kind: "expire" }, now));
			await each(await due("PENDING", "notBefore"), row => this.wake(row, now));
			if (now - this.lastPrune >= PRUNE_INTERVAL_MS) {
				this.lastPrune = now;
				this.onPrune();
				await core.store.pruneLogs(now - core.settings.logRetention);
			}
			if (now - this.lastRescan >= core.settings.rescanInterval) {
				this.lastRescan = now;
				await this.rescan(now);
			}
		} catch (err) {
			core.logger.error("Sweep failed", err);
		} finally {
			this.sweeping = false;
		}
	}

	/** A held task past its deadline that the sweep did not end (the consistency check found it). */
	overdue(row: TaskRow, now: number): Promise<void> {
		if (row.status === "DELIVERED")
			return this.timedOut(row, { kind: "ackTimeout", maxDeliveries: this.core.settings.maxDeliveries }, now);
		return this.timedOut(row, { kind: "runTimeout" }, now);
	}

	private async apply(row: TaskRow, event: TaskEvent, now: number): Promise<TaskRow | null> {
		const outcome = transition(row, event, now);
		return outcome.kind === "change" ? this.finishing.end(row, outcome) : null;
	}

	/** An ack or run deadline passed: the terminal is told to stop, the task is delivered again or ends. */
	private async timedOut(row: TaskRow, event: TaskEvent, now: number): Promise<void> {
		const reason = event.kind === "ackTimeout" ? "ack-timeout" : "timeout";
		if (row.terminalId) await this.finishing.tellTerminal(row.terminalId, { taskId: row.id, attempt: row.attempt, reason });
		const next = await this.apply(row, event, now);
		const routing = this.finishing.routing;
		// Back in the queue, same attempt (pushed again), or a slot freed on the terminal.
		if (next?.status === "PENDING" && next.attempt === row.attempt && next.retries === row.retries) await routing.route(next);
		else if (row.terminalId) await routing.requestDrain(row.terminalId);
	}

	/** A retry's backoff is over: the task may be delivered again. */
	private async wake(row: TaskRow, now: number): Promise<void> {
		const outcome = transition(row, { kind: "wake" }, now);
		if (outcome.kind !== "change") return;
		const due = await this.core.write(row, outcome, { quiet: true });
		if (due) {
			this.core.book.queuedFor(due);
			await this.finishing.routing.route(due);
		}
	}

	/**
	 * In case a drain was missed: online terminals with their own due tasks drain again, and
	 * due selector tasks are routed again (a bounded batch, each to one chosen terminal).
	 */
	/** The next sweep rescans every online terminal's queue (something may have been missed). */
	rescanSoon(): void {
		this.lastRescan = 0;
	}

	private async rescan(now: number): Promise<void> {
		const { core } = this;
		const routing = this.finishing.routing;
		const online = core.presence.list();
		if (online.length === 0) return;
		const waiting = new Set(await core.store.terminalsWithPending(now));
		for (const presence of online) {
			if (!core.owns(presence.terminalId)) continue;
			// Its own queue only: this drain may run well after `waiting` was read, and a selector task
			// submitted meanwhile is not its to take — those are routed below, by their strategy.
			if (!waiting.has(presence.terminalId)) continue;
			// The database says its queue is not empty: what this replica believed is read again, so that
			// a stale hint (left by a moment when replicas disagreed on owners) cannot hold the queue.
			core.book.forget(presence.terminalId);
			await core.locks.run(presence.terminalId, () => routing.delivery.drainOnce(presence.terminalId, presence, true));
		}
		// Only tasks left waiting a whole interval: a fresher one is being routed right now by whoever
		// queued it, and routing it twice would let the rescan pick over its strategy (round_robin turns).
		for (const row of await core.store.pendingUnassigned(now, RESCAN_SELECTORS))
			if (Number(row.updatedAt) <= now - core.settings.rescanInterval && core.owns(row.id)) await routing.route(row);
	}
}
