/**
 * The task store that keeps going when its database does not. Every call on the task's path goes
 * to the database as before (TaskStore), with a deadline; when one fails because the database is
 * away or does not answer in time, the store turns degraded (DegradedMode): from then on those
 * calls are answered by the task table in memory and every write is journalled to local disk,
 * fsynced before it is acknowledged. What degraded mode cannot answer — a page of the history, a
 * task it never saw — is refused with STORAGE_DEGRADED rather than guessed. When the database
 * answers again the journal is replayed into it and the store carries on as before.
 */
import type { TaskStatus } from "../../lib/contracts.ts";
import { Errors } from "../../lib/errors.ts";
import type { TaskModel, TaskRow } from "../../models/task.model.ts";
import { DegradedMode, type DegradedOptions } from "./degraded.ts";
import type { ListParams } from "./params.ts";
import { openDriver } from "./sql.ts";
import { TaskStore } from "./store.ts";
import { isStorageFault, withDeadline } from "./storage-faults.ts";
import type { Expect } from "./transitions.ts";

export class ResilientTaskStore extends TaskStore {
	readonly mode: DegradedMode;

	private constructor(
		model: TaskModel,
		driver: Awaited<ReturnType<typeof openDriver>>,
		options: DegradedOptions,
		onCommit?: (writes: number, ms: number) => void
	) {
		super(model, driver, onCommit);
		this.mode = new DegradedMode(driver, options);
	}

	/** Opens the store and replays what a journal left by an earlier run of this node still holds. */
	static async openResilient(
		model: TaskModel,
		uri: string,
		options: Omit<DegradedOptions, "journal"> & { journalDir: string },
		onCommit?: (writes: number, ms: number) => void
	): Promise<ResilientTaskStore> {
		const driver = withDeadline(await openDriver(model.sequelize!, uri), options.deadlineMs);
		const journal = await DegradedMode.openJournal(options.journalDir);
		const store = new ResilientTaskStore(model, driver, { ...options, journal }, onCommit);
		await store.mode.replayAtStart();
		return store;
	}

	/** Where the rows known at the moment of an outage come from (the dispatcher's recent rows). */
	seedFrom(rows: () => Iterable<TaskRow>): void {
		this.mode.seed = rows;
	}

	override async close(): Promise<void> {
		await this.mode.close();
		await super.close();
	}

	/** The database's answer, or — once it is away — degraded mode's. */
	private async either<T>(database: () => Promise<T>, degraded: () => T | Promise<T>): Promise<T> {
		if (this.mode.active) return degraded();
		try {
			return await database();
		} catch (err) {
			if (!isStorageFault(err)) throw err;
			this.mode.enter(err as Error);
			return degraded();
		}
	}

	// ------------------------------------------------------------ writes

	override insert(rows: TaskRow[]): Promise<void> {
		return this.either(
			() => super.insert(rows),
			() => this.mode.insert(rows)
		);
	}

	override transition(id: string, expect: Expect, changes: Partial<TaskRow>): Promise<boolean> {
		return this.either(
			() => super.transition(id, expect, changes),
			() => this.mode.change(id, expect, changes)
		);
	}

	override releaseKey(id: string, key: string): Promise<void> {
		return this.either(
			() => super.releaseKey(id, key),
			() => this.mode.releaseKey(id, key)
		);
	}

	override appendLog(taskId: string, attempt: number, stream: string, text: string, at: number, maxLines: number) {
		return this.either(
			() => super.appendLog(taskId, attempt, stream, text, at, maxLines),
			() => this.mode.log({ op: "log", taskId, attempt, stream, text, at, maxLines })
		);
	}

	override resealSecrets(id: string, from: string, to: string): Promise<boolean> {
		return this.either(
			() => super.resealSecrets(id, from, to),
			() => false
		);
	}

	override pruneLogs(before: number): Promise<void> {
		return this.either(
			() => super.pruneLogs(before),
			() => undefined
		);
	}

	// ------------------------------------------------------------ reads on the task's path

	override get(id: string): Promise<TaskRow | null> {
		return this.either(
			async () => this.mode.remember(await super.get(id)),
			() => this.mode.known(id)
		);
	}

	override statuses(ids: string[]): Promise<Map<string, TaskStatus>> {
		return this.either(
			() => super.statuses(ids),
			() => this.mode.memory.statuses(ids)
		);
	}

	override byIdempotencyKey(key: string): Promise<TaskRow | null> {
		return this.either(
			() => super.byIdempotencyKey(key),
			() => this.mode.memory.byIdempotencyKey(key)
		);
	}

	override byGroup(groupId: string): Promise<TaskRow[]> {
		return this.either(
			() => super.byGroup(groupId),
			() => this.mode.memory.byGroup(groupId)
		);
	}

	override pendingPinned(terminalId: string, now: number, limit: number): Promise<TaskRow[]> {
		return this.either(
			() => super.pendingPinned(terminalId, now, limit),
			() => this.mode.memory.pendingPinned(terminalId, now, limit)
		);
	}

	override pendingUnassigned(now: number, limit: number): Promise<TaskRow[]> {
		return this.either(
			() => super.pendingUnassigned(now, limit),
			() => this.mode.memory.pendingUnassigned(now, limit)
		);
	}

	override terminalsWithPending(now: number): Promise<string[]> {
		return this.either(
			() => super.terminalsWithPending(now),
			() => this.mode.memory.terminalsWithPending(now)
		);
	}

	override inflight(terminalIds: string[]): Promise<Map<string, number>> {
		return this.either(
			() => super.inflight(terminalIds),
			() => this.mode.memory.inflight(terminalIds)
		);
	}

	override countsFor(terminalIds: string[]) {
		return this.either(
			() => super.countsFor(terminalIds),
			() => {
				const running = this.mode.memory.inflight(terminalIds);
				const queued = this.mode.memory.queuedFor(terminalIds);
				return new Map(terminalIds.map(id => [id, { running: running.get(id) ?? 0, queued: queued.get(id) ?? 0 }]));
			}
		);
	}

	override queueTops(terminalIds: string[]): Promise<Map<string, number>> {
		return this.either(
			() => super.queueTops(terminalIds),
			() => this.mode.memory.queueTops(terminalIds)
		);
	}

	override due(status: TaskStatus, column: "deadlineAt" | "expiresAt" | "notBefore", now: number, limit: number) {
		return this.either(
			() => super.due(status, column, now, limit),
			() => this.mode.memory.dueIn(status, column, now, limit)
		);
	}

	override delivered(terminalId: string, before?: number): Promise<TaskRow[]> {
		return this.either(
			() => super.delivered(terminalId, before),
			() => this.mode.memory.delivered(terminalId, before)
		);
	}

	override allDelivered(limit: number): Promise<TaskRow[]> {
		return this.either(
			() => super.allDelivered(limit),
			() => this.mode.memory.delivered(null).slice(0, limit)
		);
	}

	override oldestPending(): Promise<number | null> {
		return this.either(
			() => super.oldestPending(),
			() => null
		);
	}

	override pendingByPriority(): Promise<{ priority: number; n: number }[]> {
		return this.either(
			() => super.pendingByPriority(),
			() => []
		);
	}

	override countByStatus(): Promise<Record<string, number>> {
		return this.either(
			() => super.countByStatus(),
			() => this.mode.memory.countByStatus()
		);
	}

	// ------------------------------------------------------------ what waits for the database

	override page(filter: ListParams, page: number, pageSize: number) {
		return this.either(
			() => super.page(filter, page, pageSize),
			() => Promise.reject(Errors.storageDegraded("listing tasks"))
		);
	}

	override logs(taskId: string, after: number, limit: number) {
		return this.either(
			() => super.logs(taskId, after, limit),
			() => Promise.reject(Errors.storageDegraded("reading a task's output"))
		);
	}
}
