/**
 * The scheduler's data access: jobs through their model, the fire ledger in plain SQL. A fire
 * is claimed by inserting its (jobId, fireTime) row: the primary key lets one insert win, on
 * any number of replicas.
 */
import { QueryTypes, UniqueConstraintError, type Sequelize } from "sequelize";
import type { FireOutcome, FireRow, JobModel, JobRow } from "../../models/job.model.ts";

export class JobStore {
	readonly model: JobModel;
	private readonly sequelize: Sequelize;

	constructor(model: JobModel) {
		this.model = model;
		this.sequelize = model.sequelize!;
	}

	private select<T extends object>(sql: string, replacements: unknown[]): Promise<T[]> {
		return this.sequelize.query<T>(sql, { replacements, type: QueryTypes.SELECT, raw: true });
	}

	/**
	 * Values escaped into the batch statements (as `?` replacements are): Sequelize's scan of a
	 * statement for hundreds of placeholders cost more than the escaping itself.
	 */
	private escape(value: unknown): string {
		return (this.sequelize.escape as (value: unknown) => string).call(this.sequelize, value);
	}

	/** `(…), (…)`: rows of escaped values. */
	private tuples(rows: unknown[][]): string {
		return rows.map(row => `(${row.map(value => this.escape(value)).join(", ")})`).join(", ");
	}

	async get(id: string): Promise<JobRow | null> {
		const [row] = await this.select<JobRow>("SELECT * FROM jobs WHERE id = ?", [id]);
		return row ? normalize(row) : null;
	}

	async all(): Promise<JobRow[]> {
		return (await this.select<JobRow>("SELECT * FROM jobs", [])).map(normalize);
	}

	async insert(row: JobRow): Promise<void> {
		await this.model.create(row);
	}

	/** Applies changes and bumps the version; false when the job is gone. */
	async update(id: string, changes: Partial<JobRow>): Promise<boolean> {
		const [count] = await this.model.update(
			{ ...changes, version: this.sequelize.literal("version + 1") as unknown as number },
			{ where: { id } }
		);
		return count === 1;
	}

	async remove(id: string): Promise<void> {
		await this.sequelize.query("DELETE FROM job_fires WHERE jobId = ?", { replacements: [id] });
		await this.model.destroy({ where: { id } });
	}

	async page(where: Record<string, unknown>, offset: number, limit: number) {
		const { rows, count } = await this.model.findAndCountAll({
			where,
			offset,
			limit,
			order: [
				["createdAt", "DESC"],
				["id", "DESC"]
			],
			raw: true
		});
		return { rows: (rows as unknown as JobRow[]).map(normalize), total: count };
	}

	/** Claims a fire time; false when another actor (a replica, a retry) holds it already. */
	async claim(jobId: string, fireTime: number, node: string, now: number, manual = false): Promise<boolean> {
		try {
			await this.sequelize.query(
				"INSERT INTO job_fires (jobId, fireTime, outcome, manual, node, claimedAt) VALUES (?, ?, 'CLAIMED', ?, ?, ?)",
				{ replacements: [jobId, fireTime, manual, node, now], type: QueryTypes.INSERT }
			);
			return true;
		} catch (err) {
			if (err instanceof UniqueConstraintError) return false;
			throw err;
		}
	}

	/**
	 * Claims many fire times in one statement; answers the ones this call won. Rows already
	 * present (another replica's, an earlier try's) are left alone.
	 */
	async claimMany(fires: { jobId: string; fireTime: number }[], node: string, now: number): Promise<Set<string>> {
		if (fires.length === 0) return new Set();
		const verb = this.sequelize.getDialect() === "mysql" ? "INSERT IGNORE INTO" : "INSERT OR IGNORE INTO";
		const rows = this.tuples(fires.map(f => [f.jobId, f.fireTime, "CLAIMED", false, node, now]));
		const [, inserted] = (await this.sequelize.query(
			`${verb} job_fires (jobId, fireTime, outcome, manual, node, claimedAt) VALUES ${rows}`,
			{ type: QueryTypes.INSERT }
		)) as unknown as [unknown, number];
		// Every row went in (the usual case): all are ours, no need to ask which.
		if (inserted === fires.length) return new Set(fires.map(f => `${f.jobId}:${f.fireTime}`));
		const won = await this.select<{ jobId: string; fireTime: number | string }>(
			"SELECT jobId, fireTime FROM job_fires WHERE node = ? AND claimedAt = ? AND outcome = 'CLAIMED' AND jobId IN (?)",
			[node, now, [...new Set(fires.map(f => f.jobId))]]
		);
		const wanted = new Set(fires.map(f => `${f.jobId}:${f.fireTime}`));
		return new Set(won.map(w => `${w.jobId}:${Number(w.fireTime)}`).filter(key => wanted.has(key)));
	}

	/** Settles many claims with one outcome in one statement (task ids per row). */
	async settleMany(
		outcome: FireOutcome,
		firedAt: number,
		fires: { jobId: string; fireTime: number; taskIds: string[] }[]
	): Promise<void> {
		if (fires.length === 0) return;
		if (this.sequelize.getDialect() === "sqlite") {
			// SQLite reads `outcome = 'CLAIMED' AND (… OR …)` through the claims index, testing every
			// claimed row against every fire: in a burst of 10,000, seconds per statement. Joined
			// from the fires instead, each row is found by its primary key. (MySQL looks the OR'd
			// keys up by range on its own.)
			const rows = this.tuples(fires.map(f => [f.jobId, f.fireTime, JSON.stringify(f.taskIds)]));
			await this.sequelize.query(
				`UPDATE job_fires SET outcome = ${this.escape(outcome)}, firedAt = ${this.escape(firedAt)}, taskIds = v.column3 ` +
					`FROM (VALUES ${rows}) AS v ` +
					"WHERE job_fires.jobId = v.column1 AND job_fires.fireTime = v.column2 AND job_fires.outcome = 'CLAIMED'",
				{ type: QueryTypes.UPDATE }
			);
			return;
		}
		const cases = fires.map(() => "WHEN jobId = ? AND fireTime = ? THEN ?").join(" ");
		await this.sequelize.query(
			`UPDATE job_fires SET outcome = ?, firedAt = ?, taskIds = CASE ${cases} END ` +
				`WHERE outcome = 'CLAIMED' AND (${fires.map(() => "(jobId = ? AND fireTime = ?)").join(" OR ")})`,
			{
				replacements: [
					outcome,
					firedAt,
					...fires.flatMap(f => [f.jobId, f.fireTime, JSON.stringify(f.taskIds)]),
					...fires.flatMap(f => [f.jobId, f.fireTime])
				],
				type: QueryTypes.UPDATE
			}
		);
	}

	/** Records a fire time that was not fired (MISSED, PAUSED, …); false when it has a row already. */
	async record(
		jobId: string,
		fireTime: number,
		outcome: FireOutcome,
		node: string,
		now: number,
		detail: string | null
	): Promise<boolean> {
		try {
			await this.sequelize.query(
				"INSERT INTO job_fires (jobId, fireTime, outcome, manual, node, claimedAt, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
				{ replacements: [jobId, fireTime, outcome, false, node, now, detail], type: QueryTypes.INSERT }
			);
			return true;
		} catch (err) {
			if (err instanceof UniqueConstraintError) return false;
			throw err;
		}
	}

	/** Turns a claim into its outcome. */
	async settle(
		jobId: string,
		fireTime: number,
		changes: { outcome: FireOutcome; taskIds?: string[]; firedAt?: number; detail?: string | null }
	): Promise<void> {
		await this.sequelize.query(
			"UPDATE job_fires SET outcome = ?, taskIds = ?, firedAt = ?, detail = ? WHERE jobId = ? AND fireTime = ? AND outcome = 'CLAIMED'",
			{
				replacements: [
					changes.outcome,
					changes.taskIds ? JSON.stringify(changes.taskIds) : null,
					changes.firedAt ?? null,
					changes.detail ?? null,
					jobId,
					fireTime
				],
				type: QueryTypes.UPDATE
			}
		);
	}

	async finished(jobId: string, fireTime: number, at: number): Promise<void> {
		await this.sequelize.query(
			"UPDATE job_fires SET finishedAt = ? WHERE jobId = ? AND fireTime = ? AND finishedAt IS NULL",
			{
				replacements: [at, jobId, fireTime],
				type: QueryTypes.UPDATE
			}
		);
	}

	/** The latest computed fire time with a ledger row, per job (run-now rows excluded). */
	async lastFireTimes(jobIds?: string[]): Promise<Map<string, number>> {
		const rows = jobIds
			? await this.select<{ jobId: string; t: number | string }>(
					"SELECT jobId, MAX(fireTime) AS t FROM job_fires WHERE manual = ? AND jobId IN (?) GROUP BY jobId",
					[false, jobIds]
				)
			: await this.select<{ jobId: string; t: number | string }>(
					"SELECT jobId, MAX(fireTime) AS t FROM job_fires WHERE manual = ? GROUP BY jobId",
					[false]
				);
		return new Map(rows.map(r => [r.jobId, Number(r.t)]));
	}

	/** The newest fire of a job that created tasks (scheduled or run-now). */
	async lastRun(jobId: string): Promise<FireRow | null> {
		const [row] = await this.select<FireRow>(
			"SELECT * FROM job_fires WHERE jobId = ? AND outcome IN ('FIRED', 'CAUGHT_UP') ORDER BY fireTime DESC LIMIT 1",
			[jobId]
		);
		return row ? normalizeFire(row) : null;
	}

	/** lastRun of every job that has one, in one statement (start-up, replicas changing). */
	async lastRuns(): Promise<Map<string, FireRow>> {
		const rows = await this.select<FireRow>(
			"SELECT f.* FROM job_fires f JOIN (SELECT jobId, MAX(fireTime) AS t FROM job_fires " +
				"WHERE outcome IN ('FIRED', 'CAUGHT_UP') GROUP BY jobId) m ON f.jobId = m.jobId AND f.fireTime = m.t",
			[]
		);
		return new Map(rows.map(row => [row.jobId, normalizeFire(row)]));
	}

	async fire(jobId: string, fireTime: number): Promise<FireRow | null> {
		const [row] = await this.select<FireRow>("SELECT * FROM job_fires WHERE jobId = ? AND fireTime = ?", [jobId, fireTime]);
		return row ? normalizeFire(row) : null;
	}

	/** Claims left unsettled longer than `olderThan` ms: their firer died mid-way. */
	async staleClaims(before: number, limit: number): Promise<FireRow[]> {
		return (
			await this.select<FireRow>(
				"SELECT * FROM job_fires WHERE outcome = 'CLAIMED' AND claimedAt < ? ORDER BY claimedAt LIMIT ?",
				[before, limit]
			)
		).map(normalizeFire);
	}

	async history(jobId: string, offset: number, limit: number, outcome?: string): Promise<{ rows: FireRow[]; total: number }> {
		const filter = outcome ? " AND outcome = ?" : "";
		const params: unknown[] = outcome ? [jobId, outcome] : [jobId];
		const [{ n }] = await this.select<{ n: number | string }>(
			`SELECT COUNT(*) AS n FROM job_fires WHERE jobId = ?${filter}`,
			params
		);
		const rows = await this.select<FireRow>(
			`SELECT * FROM job_fires WHERE jobId = ?${filter} ORDER BY fireTime DESC LIMIT ? OFFSET ?`,
			[...params, limit, offset]
		);
		return { rows: rows.map(normalizeFire), total: Number(n) };
	}
}

/** MySQL returns BIGINT as numbers here, SQLite booleans as 0/1: make rows uniform. */
function normalize(row: JobRow): JobRow {
	return {
		...row,
		catchUpWindowMs: Number(row.catchUpWindowMs),
		startAt: row.startAt === null ? null : Number(row.startAt),
		endAt: row.endAt === null ? null : Number(row.endAt),
		pausedAt: row.pausedAt === null ? null : Number(row.pausedAt),
		resumedAt: row.resumedAt === null ? null : Number(row.resumedAt),
		createdAt: Number(row.createdAt),
		updatedAt: Number(row.updatedAt),
		enabled: Boolean(row.enabled)
	};
}

function normalizeFire(row: FireRow): FireRow {
	return {
		...row,
		fireTime: Number(row.fireTime),
		claimedAt: Number(row.claimedAt),
		firedAt: row.firedAt === null ? null : Number(row.firedAt),
		finishedAt: row.finishedAt === null ? null : Number(row.finishedAt),
		manual: Boolean(row.manual)
	};
}
