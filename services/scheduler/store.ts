/**
 * The scheduler's data access: every statement on `jobs` and `job_fires`, one named method
 * each, values always bound (`$1`, `$2`, … passed to the driver, never written into the SQL
 * text). A fire is claimed by inserting its (jobId, fireTime) row: the primary key lets one
 * insert win, on any number of replicas; and the insert names the claimant's lease epoch, so a
 * replica whose lease ended (it was frozen while another took its jobs) claims nothing.
 */
import type { NodeLease } from "../../lib/lease.ts";
import { isDuplicate, Statements } from "../../lib/sql/statements.ts";
import type { FireOutcome, FireRow, JobModel, JobRow } from "../../models/job.model.ts";

/** Columns a job update may set; names in SQL come only from this list. */
const JOB_COLUMNS = [
	"name",
	"schedule",
	"task",
	"misfirePolicy",
	"overlapPolicy",
	"catchUpWindowMs",
	"startAt",
	"endAt",
	"enabled",
	"pausedAt",
	"resumedAt",
	"createdBy",
	"createdAt",
	"updatedAt"
] as const satisfies readonly (keyof JobRow)[];

/** `$from, $from+1, …`: `count` placeholders (the values go to the driver). */
function placeholders(count: number, from = 1): string {
	return Array.from({ length: count }, (_, i) => `$${from + i}`).join(", ");
}

/** `($1, $2, $3), ($4, $5, $6), …`: one group of `width` placeholders per row. */
function rowPlaceholders(rows: number, width: number, from = 1): string {
	return Array.from({ length: rows }, (_, r) => `(${placeholders(width, from + r * width)})`).join(", ");
}

/** Rows per multi-row claim: SQLite takes at most 500 SELECTs in one compound. */
const CLAIM_CHUNK = 400;

export class JobStore {
	readonly model: JobModel;
	readonly sql: Statements;
	/** Claims and fire records are written only while this lease runs; none: unguarded (tests of the store alone). */
	lease: NodeLease | null = null;
	/** Told of claims refused because the lease was over. */
	onFenced: ((refused: number) => void) | null = null;

	constructor(model: JobModel) {
		this.model = model;
		this.sql = new Statements(model.sequelize!);
	}

	private select<T extends object>(sql: string, params: unknown[]): Promise<T[]> {
		return this.sql.select<T>(sql, params);
	}

	private run(sql: string, params: unknown[]): Promise<number> {
		return this.sql.run(sql, params);
	}

	private get isMysql(): boolean {
		return this.sql.dialect === "mysql";
	}

	// ------------------------------------------------------------ jobs

	async get(id: string): Promise<JobRow | null> {
		const [row] = await this.select<JobRow>("SELECT * FROM jobs WHERE id = $1", [id]);
		return row ? normalize(row) : null;
	}

	async all(): Promise<JobRow[]> {
		return (await this.select<JobRow>("SELECT * FROM jobs", [])).map(normalize);
	}

	async insert(row: JobRow): Promise<void> {
		const columns = ["id", ...JOB_COLUMNS, "version"] as const;
		await this.run(
			`INSERT INTO jobs (${columns.join(", ")}) VALUES (${placeholders(columns.length)})`,
			columns.map(c => row[c])
		);
	}

	/** Applies changes and bumps the version; false when the job is gone. */
	async update(id: string, changes: Partial<JobRow>): Promise<boolean> {
		const columns = JOB_COLUMNS.filter(c => changes[c] !== undefined);
		const sets = columns.map((c, i) => `${c} = $${i + 1}`);
		const changed = await this.run(
			`UPDATE jobs SET ${[...sets, "version = version + 1"].join(", ")} WHERE id = $${columns.length + 1}`,
			[...columns.map(c => changes[c]), id]
		);
		return changed === 1;
	}

	/** The job and its ledger. */
	async remove(id: string): Promise<void> {
		await this.run("DELETE FROM job_fires WHERE jobId = $1", [id]);
		await this.run("DELETE FROM jobs WHERE id = $1", [id]);
	}

	// ------------------------------------------------------------ claims

	/** Claims a fire time; false when another actor (a replica, a retry) holds it already. */
	async claim(jobId: string, fireTime: number, node: string, now: number, manual = false): Promise<boolean> {
		return this.insertFire(jobId, fireTime, "CLAIMED", manual, node, now, null);
	}

	/**
	 * Claims many fire times in one statement; answers the ones this call won. Rows already
	 * present (another replica's, an earlier try's) are left alone.
	 */
	async claimMany(fires: { jobId: string; fireTime: number }[], node: string, now: number): Promise<Set<string>> {
		if (fires.length === 0) return new Set();
		let inserted = 0;
		for (let start = 0; start < fires.length; start += CLAIM_CHUNK)
			inserted += await this.insertClaims(fires.slice(start, start + CLAIM_CHUNK), node, now);
		// Every row went in (the usual case): all are ours, no need to ask which.
		if (inserted === fires.length) return new Set(fires.map(f => `${f.jobId}:${f.fireTime}`));
		const jobIds = [...new Set(fires.map(f => f.jobId))];
		const won = await this.select<{ jobId: string; fireTime: number | string }>(
			"SELECT jobId, fireTime FROM job_fires WHERE node = $1 AND claimedAt = $2 AND outcome = 'CLAIMED' " +
				`AND jobId IN (${placeholders(jobIds.length, 3)})`,
			[node, now, ...jobIds]
		);
		const wanted = new Set(fires.map(f => `${f.jobId}:${f.fireTime}`));
		return new Set(won.map(w => `${w.jobId}:${Number(w.fireTime)}`).filter(key => wanted.has(key)));
	}

	/** One multi-row claim, written only while this replica's lease runs (see lib/lease.ts). */
	private insertClaims(fires: { jobId: string; fireTime: number }[], node: string, now: number): Promise<number> {
		const verb = this.isMysql ? "INSERT IGNORE INTO" : "INSERT OR IGNORE INTO";
		const columns = "(jobId, fireTime, outcome, manual, node, claimedAt, epoch)";
		const values = fires.flatMap(f => [f.jobId, f.fireTime, "CLAIMED", false, node, now, this.lease?.epoch ?? null]);
		if (!this.lease) return this.run(`${verb} job_fires ${columns} VALUES ${rowPlaceholders(fires.length, 7)}`, values);
		const rows = fires.map((_, r) => {
			const p = (i: number) => `$${r * 7 + i}`;
			return r === 0
				? `SELECT ${p(1)} AS jobId, ${p(2)} AS fireTime, ${p(3)} AS outcome, ${p(4)} AS manual, ${p(5)} AS node, ${p(6)} AS claimedAt, ${p(7)} AS epoch`
				: `SELECT ${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}`;
		});
		const guard = this.lease.guard(values.length + 1);
		return this.run(`${verb} job_fires ${columns} SELECT * FROM (${rows.join(" UNION ALL ")}) AS fires WHERE ${guard.sql}`, [
			...values,
			...guard.params
		]).then(n => this.fenced(n, fires.length));
	}

	/** Counts a claim the database refused because this replica's lease was over. */
	private fenced(inserted: number, asked: number): number {
		if (inserted === 0 && asked > 0 && this.lease && !this.lease.fresh) this.onFenced?.(asked);
		return inserted;
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
		return this.insertFire(jobId, fireTime, outcome, false, node, now, detail);
	}

	private async insertFire(
		jobId: string,
		fireTime: number,
		outcome: FireOutcome,
		manual: boolean,
		node: string,
		now: number,
		detail: string | null
	): Promise<boolean> {
		try {
			const values = [jobId, fireTime, outcome, manual, node, now, detail, this.lease?.epoch ?? null];
			const columns = "(jobId, fireTime, outcome, manual, node, claimedAt, detail, epoch)";
			if (!this.lease) {
				await this.run(`INSERT INTO job_fires ${columns} VALUES (${placeholders(8)})`, values);
				return true;
			}
			const guard = this.lease.guard(9);
			const inserted = await this.run(
				`INSERT INTO job_fires ${columns} SELECT ${placeholders(8)} FROM (SELECT 1 AS one) AS fence WHERE ${guard.sql}`,
				[...values, ...guard.params]
			);
			if (inserted === 0) this.onFenced?.(1);
			return inserted === 1;
		} catch (err) {
			if (isDuplicate(err)) return false;
			throw err;
		}
	}

	// ------------------------------------------------------------ settling

	/** Turns a claim into its outcome. */
	async settle(
		jobId: string,
		fireTime: number,
		changes: { outcome: FireOutcome; taskIds?: string[]; firedAt?: number; detail?: string | null }
	): Promise<void> {
		await this.run(
			"UPDATE job_fires SET outcome = $1, taskIds = $2, firedAt = $3, detail = $4 " +
				"WHERE jobId = $5 AND fireTime = $6 AND outcome = 'CLAIMED'",
			[
				changes.outcome,
				changes.taskIds ? JSON.stringify(changes.taskIds) : null,
				changes.firedAt ?? null,
				changes.detail ?? null,
				jobId,
				fireTime
			]
		);
	}

	/** Settles many claims with one outcome in one statement (task ids per row). */
	async settleMany(
		outcome: FireOutcome,
		firedAt: number,
		fires: { jobId: string; fireTime: number; taskIds: string[] }[]
	): Promise<void> {
		if (fires.length === 0) return;
		const perFire = fires.flatMap(f => [f.jobId, f.fireTime, JSON.stringify(f.taskIds)]);
		if (!this.isMysql) {
			// SQLite reads `outcome = 'CLAIMED' AND (… OR …)` through the claims index, testing every
			// claimed row against every fire: in a burst of 10,000, seconds per statement. Joined
			// from the fires instead, each row is found by its primary key. (MySQL looks the OR'd
			// keys up by range on its own.)
			await this.run(
				"UPDATE job_fires SET outcome = $1, firedAt = $2, taskIds = v.column3 " +
					`FROM (VALUES ${rowPlaceholders(fires.length, 3, 3)}) AS v ` +
					"WHERE job_fires.jobId = v.column1 AND job_fires.fireTime = v.column2 AND job_fires.outcome = 'CLAIMED'",
				[outcome, firedAt, ...perFire]
			);
			return;
		}
		const cases = fires.map((_, i) => `WHEN jobId = $${3 + 3 * i} AND fireTime = $${4 + 3 * i} THEN $${5 + 3 * i}`);
		const keys = fires.map((_, i) => `(jobId = $${3 + 3 * i} AND fireTime = $${4 + 3 * i})`);
		await this.run(
			`UPDATE job_fires SET outcome = $1, firedAt = $2, taskIds = CASE ${cases.join(" ")} END ` +
				`WHERE outcome = 'CLAIMED' AND (${keys.join(" OR ")})`,
			[outcome, firedAt, ...perFire]
		);
	}

	/** Marks a run ended: its tasks all reached a final state. */
	async finished(jobId: string, fireTime: number, at: number): Promise<void> {
		await this.run("UPDATE job_fires SET finishedAt = $1 WHERE jobId = $2 AND fireTime = $3 AND finishedAt IS NULL", [
			at,
			jobId,
			fireTime
		]);
	}

	// ------------------------------------------------------------ reading the ledger

	/** The latest computed fire time with a ledger row, per job (run-now rows excluded). */
	async lastFireTimes(jobIds?: string[]): Promise<Map<string, number>> {
		const rows = jobIds
			? await this.select<{ jobId: string; t: number | string }>(
					`SELECT jobId, MAX(fireTime) AS t FROM job_fires WHERE manual = $1 AND jobId IN (${placeholders(jobIds.length, 2)}) GROUP BY jobId`,
					[false, ...jobIds]
				)
			: await this.select<{ jobId: string; t: number | string }>(
					"SELECT jobId, MAX(fireTime) AS t FROM job_fires WHERE manual = $1 GROUP BY jobId",
					[false]
				);
		return new Map(rows.map(r => [r.jobId, Number(r.t)]));
	}

	/** The newest fire of a job that created tasks (scheduled or run-now). */
	async lastRun(jobId: string): Promise<FireRow | null> {
		const [row] = await this.select<FireRow>(
			"SELECT * FROM job_fires WHERE jobId = $1 AND outcome IN ('FIRED', 'CAUGHT_UP') ORDER BY fireTime DESC LIMIT 1",
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
		const [row] = await this.select<FireRow>("SELECT * FROM job_fires WHERE jobId = $1 AND fireTime = $2", [jobId, fireTime]);
		return row ? normalizeFire(row) : null;
	}

	/** Claims left unsettled since before `before` (ms): their firer died mid-way. */
	async staleClaims(before: number, limit: number): Promise<FireRow[]> {
		return (
			await this.select<FireRow>(
				"SELECT * FROM job_fires WHERE outcome = 'CLAIMED' AND claimedAt < $1 ORDER BY claimedAt LIMIT $2",
				[before, limit]
			)
		).map(normalizeFire);
	}

	/** A page of a job's ledger, newest first, and the count of its rows (of one outcome, if given). */
	async history(jobId: string, offset: number, limit: number, outcome?: string): Promise<{ rows: FireRow[]; total: number }> {
		const filter = outcome ? " AND outcome = $2" : "";
		const bind: unknown[] = outcome ? [jobId, outcome] : [jobId];
		const [{ n }] = await this.select<{ n: number | string }>(
			`SELECT COUNT(*) AS n FROM job_fires WHERE jobId = $1${filter}`,
			bind
		);
		const rows = await this.select<FireRow>(
			`SELECT * FROM job_fires WHERE jobId = $1${filter} ORDER BY fireTime DESC LIMIT $${bind.length + 1} OFFSET $${bind.length + 2}`,
			[...bind, limit, offset]
		);
		return { rows: rows.map(normalizeFire), total: Number(n) };
	}
}

/** MySQL returns BIGINT as numbers here, SQLite booleans as 0/1: make rows uniform. */
export function normalize(row: JobRow): JobRow {
	return {
		...row,
		catchUpWindowMs: Number(row.catchUpWindowMs),
		startAt: row.startAt === null ? null : Number(row.startAt),
		endAt: row.endAt === null ? null : Number(row.endAt),
		pausedAt: row.pausedAt === null ? null : Number(row.pausedAt),
		resumedAt: row.resumedAt === null ? null : Number(row.resumedAt),
		createdAt: Number(row.createdAt),
		updatedAt: Number(row.updatedAt),
		enabled: Boolean(row.enabled),
		version: Number(row.version)
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
