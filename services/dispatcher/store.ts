/**
 * The dispatcher's data access. Every state change is a compare-and-set: an UPDATE that names
 * the state (and attempt) it expects, so concurrent actors — a result racing a timeout, two
 * dispatcher replicas — cannot both win, and each knows whether it did.
 *
 * Writes on every task's path (inserts, transitions) go through a group commit (commit.ts): the
 * writes of many tasks share one transaction and one fsync. The queries on that path are plain SQL
 * through the dispatcher's own driver (sql.ts); the rest (lists, counts) use the Sequelize model.
 */
import { Op, col, fn, where as where_, type WhereOptions } from "sequelize";
import type { TaskStatus } from "../../lib/contracts.ts";
import type { TaskModel, TaskRow } from "../../models/task.model.ts";
import { GroupCommit } from "./commit.ts";
import type { ListParams } from "./params.ts";
import type { Expect } from "./transitions.ts";
import { DuplicateKeyError, openDriver, type SqlDriver } from "./sql.ts";
import { insertStatements, transitionStatement } from "./task-sql.ts";

export class TaskStore {
	readonly model: TaskModel;
	readonly driver: SqlDriver;
	readonly commits: GroupCommit;

	/** `onCommit`: told of each group commit (see GroupCommit). */
	constructor(model: TaskModel, driver: SqlDriver, onCommit?: (writes: number, ms: number) => void) {
		this.model = model;
		this.driver = driver;
		this.commits = new GroupCommit(driver, undefined, onCommit);
	}

	static async open(model: TaskModel, uri: string, onCommit?: (writes: number, ms: number) => void): Promise<TaskStore> {
		return new TaskStore(model, await openDriver(model.sequelize!, uri), onCommit);
	}

	/** Waits for the writes under way, then lets the driver go. */
	async close(): Promise<void> {
		await this.commits.drained();
		await this.driver.close();
	}

	private select<T extends object>(sql: string, params: unknown[]): Promise<T[]> {
		return this.driver.select<T>(sql, params);
	}

	/**
	 * Multi-row INSERTs in one commit (shared with other writes). A taken idempotency key fails
	 * with DuplicateKeyError. Columns that are NULL in every row (and NULL by default) are left out.
	 */
	async insert(rows: TaskRow[]): Promise<void> {
		await Promise.all(insertStatements(rows).map(s => this.commits.write(s.sql, s.params)));
	}

	async get(id: string): Promise<TaskRow | null> {
		const [row] = await this.select<TaskRow>("SELECT * FROM tasks WHERE id = ?", [id]);
		return row ?? null;
	}

	/** The status of each of these tasks that exists. */
	async statuses(ids: string[]): Promise<Map<string, TaskStatus>> {
		if (ids.length === 0) return new Map();
		const rows = await this.select<{ id: string; status: TaskStatus }>("SELECT id, status FROM tasks WHERE id IN (?)", [ids]);
		return new Map(rows.map(row => [row.id, row.status]));
	}

	async byIdempotencyKey(key: string): Promise<TaskRow | null> {
		const [row] = await this.select<TaskRow>("SELECT * FROM tasks WHERE idempotencyKey = ? LIMIT 1", [key]);
		return row ?? null;
	}

	byGroup(groupId: string): Promise<TaskRow[]> {
		return this.select<TaskRow>("SELECT * FROM tasks WHERE groupId = ? ORDER BY id", [groupId]);
	}

	/** Frees an idempotency key whose 24 h are over, so a new task may take it. */
	async releaseKey(id: string, key: string): Promise<void> {
		await this.commits.write("UPDATE tasks SET idempotencyKey = NULL WHERE id = ? AND idempotencyKey = ?", [id, key]);
	}

	/** Applies `changes` only if the task is still as expected; true when it was. */
	async transition(id: string, expect: Expect, changes: Partial<TaskRow>): Promise<boolean> {
		const s = transitionStatement(this.driver.dialect, id, expect, changes);
		return (await this.commits.write(s.sql, s.params)) === 1;
	}

	/** PENDING tasks named for this terminal and due now, highest priority first, FIFO within one. */
	pendingPinned(terminalId: string, now: number, limit: number): Promise<TaskRow[]> {
		return this.select<TaskRow>(
			"SELECT * FROM tasks WHERE status = 'PENDING' AND target = ? AND (notBefore IS NULL OR notBefore <= ?) " +
				"ORDER BY priority DESC, id ASC LIMIT ?",
			[terminalId, now, limit]
		);
	}

	/** PENDING selector tasks due now, in queue order. */
	pendingUnassigned(now: number, limit: number): Promise<TaskRow[]> {
		return this.select<TaskRow>(
			"SELECT * FROM tasks WHERE status = 'PENDING' AND target IS NULL AND (notBefore IS NULL OR notBefore <= ?) " +
				"ORDER BY priority DESC, id ASC LIMIT ?",
			[now, limit]
		);
	}

	/** Terminals that have pinned PENDING tasks due now. */
	async terminalsWithPending(now: number): Promise<string[]> {
		const rows = await this.select<{ target: string }>(
			"SELECT DISTINCT target FROM tasks WHERE status = 'PENDING' AND target IS NOT NULL AND (notBefore IS NULL OR notBefore <= ?)",
			[now]
		);
		return rows.map(r => r.target);
	}

	/** Tasks each terminal holds now (DELIVERED or PROCESSING). */
	async inflight(terminalIds: string[]): Promise<Map<string, number>> {
		const counts = new Map(terminalIds.map(id => [id, 0]));
		if (terminalIds.length === 0) return counts;
		const rows = await this.select<{ terminalId: string; n: number | string }>(
			"SELECT terminalId, COUNT(*) AS n FROM tasks WHERE status IN ('DELIVERED', 'PROCESSING') AND terminalId IN (?) GROUP BY terminalId",
			[terminalIds]
		);
		for (const row of rows) counts.set(row.terminalId, Number(row.n));
		return counts;
	}

	/** Per terminal: tasks it holds (DELIVERED, PROCESSING) and tasks waiting for it by id (PENDING). */
	async countsFor(terminalIds: string[]): Promise<Map<string, { running: number; queued: number }>> {
		const counts = new Map(terminalIds.map(id => [id, { running: 0, queued: 0 }]));
		if (terminalIds.length === 0) return counts;
		const running = await this.inflight(terminalIds);
		const queued = await this.select<{ target: string; n: number | string }>(
			"SELECT target, COUNT(*) AS n FROM tasks WHERE status = 'PENDING' AND target IN (?) GROUP BY target",
			[terminalIds]
		);
		for (const [id, n] of running) counts.get(id)!.running = n;
		for (const row of queued) counts.get(row.target)!.queued = Number(row.n);
		return counts;
	}

	/**
	 * The highest priority waiting for each of these terminals: PENDING tasks named for it and
	 * tasks delivered to it; a terminal with neither is absent.
	 */
	async queueTops(terminalIds: string[]): Promise<Map<string, number>> {
		const tops = new Map<string, number>();
		if (terminalIds.length === 0) return tops;
		const rows = await this.select<{ t: string; top: number | string }>(
			"SELECT CASE WHEN status = 'PENDING' THEN target ELSE terminalId END AS t, MAX(priority) AS top FROM tasks" +
				" WHERE (status = 'PENDING' AND target IN (?)) OR (status = 'DELIVERED' AND terminalId IN (?)) GROUP BY t",
			[terminalIds, terminalIds]
		);
		for (const row of rows) tops.set(row.t, Math.max(tops.get(row.t) ?? Number.NEGATIVE_INFINITY, Number(row.top)));
		return tops;
	}

	/** Tasks in `status` whose `column` time has come. */
	async due(
		status: TaskStatus,
		column: "deadlineAt" | "expiresAt" | "notBefore",
		now: number,
		limit: number
	): Promise<TaskRow[]> {
		// Plain SQL: the sweep runs four of these every 250 ms, and a finder costs a schema lookup each.
		return this.select<TaskRow>(`SELECT * FROM tasks WHERE status = ? AND ${column} <= ? ORDER BY ${column} LIMIT ?`, [
			status,
			now,
			limit
		]);
	}

	/** DELIVERED tasks of a terminal, optionally only those delivered before `before`. */
	delivered(terminalId: string, before?: number): Promise<TaskRow[]> {
		if (before === undefined)
			return this.select<TaskRow>("SELECT * FROM tasks WHERE terminalId = ? AND status = 'DELIVERED'", [terminalId]);
		return this.select<TaskRow>("SELECT * FROM tasks WHERE terminalId = ? AND status = 'DELIVERED' AND deliveredAt < ?", [
			terminalId,
			before
		]);
	}

	allDelivered(limit: number): Promise<TaskRow[]> {
		return this.select<TaskRow>("SELECT * FROM tasks WHERE status = 'DELIVERED' LIMIT ?", [limit]);
	}

	/** One page of tasks matching the list filters, sorted (newest first by default), and the total. */
	async page(filter: ListParams, page: number, pageSize: number) {
		const where: Record<string | symbol, unknown> = {};
		if (filter.status) where.status = { [Op.in]: filter.status.split(",") };
		if (filter.terminalId) where[Op.or] = [{ terminalId: filter.terminalId }, { target: filter.terminalId }];
		if (filter.type) where.type = filter.type;
		if (filter.groupId) where.groupId = filter.groupId;
		if (filter.since || filter.until)
			where.createdAt = {
				...(filter.since ? { [Op.gte]: filter.since.getTime() } : {}),
				...(filter.until ? { [Op.lt]: filter.until.getTime() } : {})
			};
		// A text search: a task id's prefix, or a part of its type, terminal or idempotency key.
		// INSTR (SQLite and MySQL alike) takes the text as a bound value, with no LIKE wildcards to escape.
		if (filter.q) {
			const has = (column: string, op: symbol) =>
				where_(fn("INSTR", col(column), filter.q!), { [op]: op === Op.eq ? 1 : 0 });
			const text = [
				has("id", Op.eq),
				has("type", Op.gt),
				has("terminalId", Op.gt),
				has("target", Op.gt),
				has("idempotencyKey", Op.gt)
			];
			where[Op.and] = [...((where[Op.and] as unknown[]) ?? []), { [Op.or]: text }];
		}
		const sort = filter.sort ?? "-createdAt";
		const direction = sort.startsWith("-") ? "DESC" : "ASC";
		const { rows, count } = await this.model.findAndCountAll({
			where: where as WhereOptions<TaskRow>,
			attributes: { exclude: ["history"] },
			offset: (page - 1) * pageSize,
			limit: pageSize,
			order: [
				[sort.replace(/^-/, ""), direction],
				["id", direction]
			],
			raw: true
		});
		return { rows: rows as unknown as TaskRow[], total: count };
	}

	/**
	 * Appends a chunk of a task's output as the next line; false when the task already has
	 * `maxLines` (the output is bounded). Replicas may append at once: the (taskId, seq) key
	 * makes one of them take the next number.
	 */
	async appendLog(
		taskId: string,
		attempt: number,
		stream: string,
		text: string,
		at: number,
		maxLines: number
	): Promise<boolean> {
		for (let tries = 0; ; tries++) {
			const [{ n }] = await this.select<{ n: number | string | null }>(
				"SELECT MAX(seq) AS n FROM task_logs WHERE taskId = ?",
				[taskId]
			);
			const seq = Number(n ?? 0) + 1;
			if (seq > maxLines) return false;
			try {
				await this.commits.write(
					"INSERT INTO task_logs (taskId, seq, attempt, stream, text, at) VALUES (?, ?, ?, ?, ?, ?)",
					[taskId, seq, attempt, stream, text, at]
				);
				return true;
			} catch (err) {
				if (!(err instanceof DuplicateKeyError) || tries >= 5) throw err;
			}
		}
	}

	logs(taskId: string, after: number, limit: number) {
		return this.select<{ seq: number; attempt: number; stream: string; text: string; at: number | string }>(
			"SELECT seq, attempt, stream, text, at FROM task_logs WHERE taskId = ? AND seq > ? ORDER BY seq LIMIT ?",
			[taskId, after, limit]
		);
	}

	/** Drops output older than the retention. */
	async pruneLogs(before: number): Promise<void> {
		await this.driver.run("DELETE FROM task_logs WHERE at < ?", [before]);
	}

	/** Up to `limit` tasks after `after` (id order) with secrets not matching `current` (a LIKE pattern, `!` escapes). */
	sealedPage(after: string | null, limit: number, current: string): Promise<{ id: string; secrets: string }[]> {
		return this.select<{ id: string; secrets: string }>(
			"SELECT id, secrets FROM tasks WHERE id > ? AND secrets IS NOT NULL AND secrets NOT LIKE ? ESCAPE '!' ORDER BY id LIMIT ?",
			[after ?? "", current, limit]
		);
	}

	/** Replaces a task's sealed secrets if they are still `from` (the re-sealing); true when they were. */
	async resealSecrets(id: string, from: string, to: string): Promise<boolean> {
		return (await this.commits.write("UPDATE tasks SET secrets = ? WHERE id = ? AND secrets = ?", [to, id, from])) === 1;
	}

	/** When the oldest PENDING task was created, or null when none waits. */
	async oldestPending(): Promise<number | null> {
		const [row] = await this.select<{ oldest: number | string | null }>(
			"SELECT MIN(createdAt) AS oldest FROM tasks WHERE status = 'PENDING'",
			[]
		);
		return row?.oldest === null || row?.oldest === undefined ? null : Number(row.oldest);
	}

	/** PENDING tasks per priority: the queue depth the metrics show. */
	async pendingByPriority(): Promise<{ priority: number; n: number }[]> {
		const rows = await this.select<{ priority: number; n: number | string }>(
			"SELECT priority, COUNT(*) AS n FROM tasks WHERE status = ? GROUP BY priority",
			["PENDING"]
		);
		return rows.map(r => ({ priority: Number(r.priority), n: Number(r.n) }));
	}

	async countByStatus(): Promise<Record<string, number>> {
		const rows = await this.select<{ status: string; n: number | string }>(
			"SELECT status, COUNT(*) AS n FROM tasks GROUP BY status",
			[]
		);
		return Object.fromEntries(rows.map(r => [r.status, Number(r.n)]));
	}
}
