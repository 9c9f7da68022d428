/**
 * Degraded mode: what the dispatcher does while its database is away. It enters on the first
 * storage fault (ResilientTaskStore), seeds the task table in memory with the rows it had at
 * hand, answers writes there and journals each before acknowledging it, and probes the database
 * every `probeIntervalMs`. Once the database answers, the journal is replayed into it; writes
 * made during the replay are journalled too and replayed next, and only when a pass finds
 * nothing new does the dispatcher leave degraded mode, in the same turn, so no write falls
 * between the journal and the database.
 */
import type { Logger } from "moleculer";
import { LRUCache } from "lru-cache";
import { Errors } from "../../lib/errors.ts";
import { Journal } from "../../lib/journal.ts";
import type { StorageMetrics } from "../../lib/metrics/commits.ts";
import type { StorageState } from "../../lib/contracts.ts";
import type { TaskRow } from "../../models/task.model.ts";
import { MemoryTasks } from "./memory-tasks.ts";
import { emptyCounts, replaySegment, type JournalRecord, type ReplayCounts } from "./replay.ts";
import type { SqlDriver } from "./sql.ts";
import { isStorageFault } from "./storage-faults.ts";
import type { Expect } from "./transitions.ts";

export interface DegradedOptions {
	journal: Journal<JournalRecord>;
	/** A statement that takes longer than this is a storage fault. @defaultValue 5000 */
	deadlineMs: number;
	/** How often the database is asked whether it is back. @defaultValue 1000 */
	probeIntervalMs: number;
	logger: Logger;
	metrics: StorageMetrics | null;
	/** Told when degraded mode starts and ends. */
	onChange?(state: StorageState): void;
}

/** Rows read from the database kept at hand, to seed the table in memory if it goes away. */
const RECENT_ROWS = 20_000;

function describe(err: Error): string {
	const code = (err as { code?: string }).code;
	return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
}

export class DegradedMode {
	readonly memory = new MemoryTasks();
	/** The rows the dispatcher wrote last (its row cache), read when degraded mode starts. */
	seed: () => Iterable<TaskRow> = () => [];
	private readonly driver: SqlDriver;
	private readonly options: DegradedOptions;
	private readonly journal: Journal<JournalRecord>;
	private readonly recent = new LRUCache<string, TaskRow>({ max: RECENT_ROWS });
	private state: StorageState = { degraded: false, reason: null, since: null, journalled: 0, lastReplay: null };
	private probe: NodeJS.Timeout | null = null;
	private recovering: Promise<void> | null = null;

	constructor(driver: SqlDriver, options: DegradedOptions) {
		this.driver = driver;
		this.options = options;
		this.journal = options.journal;
	}

	static openJournal(dir: string): Promise<Journal<JournalRecord>> {
		return Journal.open<JournalRecord>(dir);
	}

	get active(): boolean {
		return this.state.degraded;
	}

	/** What `/api/system/status` and `dispatcher.storage` show. */
	get status(): StorageState {
		return { ...this.state };
	}

	/** A row read from the database, kept at hand for an outage. */
	remember(row: TaskRow | null): TaskRow | null {
		if (row) this.recent.set(row.id, row);
		return row;
	}

	/** A row in degraded mode: the table's, else refused — its state is in the database only. */
	known(id: string): TaskRow | null {
		const row = this.memory.get(id);
		if (!row) throw Errors.storageDegraded(`reading task '${id}'`);
		return row;
	}

	enter(err: Error): void {
		if (this.state.degraded) return;
		this.memory.seed(this.seed());
		this.memory.seed(this.recent.values());
		this.state = { ...this.state, degraded: true, reason: describe(err), since: new Date().toISOString(), journalled: 0 };
		this.options.metrics?.setDegraded(true);
		this.options.logger.warn(
			`Database unreachable (${this.state.reason}): degraded mode, ${this.memory.size} task(s) in memory, changes journalled to ${this.journal.dir}`
		);
		this.probe = setInterval(() => void this.tryRecover(), this.options.probeIntervalMs);
		this.probe.unref();
		this.options.onChange?.(this.status);
	}

	// ------------------------------------------------------------ writes while degraded

	async insert(rows: TaskRow[]): Promise<void> {
		this.memory.insert(rows);
		try {
			await this.write({ op: "insert", rows });
		} catch (err) {
			for (const row of rows) this.memory.forget(row.id);
			throw err;
		}
	}

	async change(id: string, expect: Expect, changes: Partial<TaskRow>): Promise<boolean> {
		const before = this.memory.get(id);
		if (!before || !this.memory.transition(id, expect, changes)) return false;
		try {
			await this.write({ op: "change", id, expect, changes });
		} catch (err) {
			this.memory.restore(before);
			throw err;
		}
		return true;
	}

	async releaseKey(id: string, key: string): Promise<void> {
		if (this.memory.releaseKey(id, key)) await this.write({ op: "releaseKey", id, key });
	}

	async log(record: Extract<JournalRecord, { op: "log" }>): Promise<boolean> {
		await this.write(record);
		return true;
	}

	private async write(record: JournalRecord): Promise<void> {
		await this.journal.write(record);
		this.state.journalled++;
		this.options.metrics?.journal(1);
	}

	// ------------------------------------------------------------ coming back

	/** A journal an earlier run of this node left (it stopped while degraded) goes in before anything else. */
	async replayAtStart(): Promise<void> {
		const segments = await this.journal.segments();
		if (segments.length === 0) return;
		const counts = emptyCounts();
		const started = Date.now();
		for (const segment of segments) await replaySegment(this.journal, segment, this.driver, counts);
		this.finishReplay(counts, started, "at start");
	}

	/** Asks the database whether it is back; if it is, replays the journal and leaves degraded mode. */
	tryRecover(): Promise<void> {
		this.recovering ??= this.recover().finally(() => (this.recovering = null));
		return this.recovering;
	}

	private async recover(): Promise<void> {
		if (!this.state.degraded) return;
		try {
			await this.driver.select("SELECT 1", []);
		} catch {
			return;
		}
		const counts = emptyCounts();
		const started = Date.now();
		try {
			for (;;) {
				const mark = this.journal.records;
				await this.journal.rotate();
				for (const segment of await this.journal.segments())
					if (segment < this.journal.active) await replaySegment(this.journal, segment, this.driver, counts);
				// Nothing journalled since this pass began: the database has all of it. Leave now, in this turn.
				if (!this.journal.busy && this.journal.records === mark) break;
			}
		} catch (err) {
			if (!isStorageFault(err)) this.options.logger.error("Replaying the journal failed; trying again", err);
			return;
		}
		if (this.probe) clearInterval(this.probe);
		this.probe = null;
		this.memory.clear();
		this.state = { ...this.state, degraded: false, reason: null, since: null };
		this.options.metrics?.setDegraded(false);
		this.finishReplay(counts, started, "after the outage");
		this.options.onChange?.(this.status);
	}

	private finishReplay(counts: ReplayCounts, started: number, when: string): void {
		const tookMs = Date.now() - started;
		this.state.lastReplay = { ...counts, at: new Date().toISOString(), tookMs };
		const metrics = this.options.metrics;
		metrics?.replay("applied", counts.applied);
		metrics?.replay("skipped", counts.skipped);
		metrics?.replay("conflict", counts.conflicts);
		this.options.logger.info(
			`Journal replayed ${when}: ${counts.records} change(s) in ${tookMs} ms — ${counts.applied} applied, ` +
				`${counts.skipped} already there, ${counts.conflicts} conflict(s)` +
				(counts.discardedBytes > 0 ? `, ${counts.discardedBytes} byte(s) of a torn write left out` : "")
		);
	}

	async close(): Promise<void> {
		if (this.probe) clearInterval(this.probe);
		this.probe = null;
		await this.recovering;
		await this.journal.close();
	}
}
