/**
 * The scheduler's core: which jobs this replica owns, one timer for all of them, and firing.
 *
 * Exactly once. A fire is claimed by inserting its (jobId, fireTime) ledger row: one insert
 * wins across all replicas. The claimant then submits the job's task with the idempotency key
 * `job:<jobId>:<fireTime>`, so that if it dies between the claim and the submit, whoever
 * completes the stale claim gets the same task, never a second one. The claim is settled with
 * the outcome and the task ids.
 *
 * Sharing. Each job belongs to one replica, chosen by rendezvous hashing over the live
 * scheduler nodes; when a replica leaves (Moleculer notices within 3 s) the others take its jobs
 * and apply each job's misfire policy to the fire times it missed.
 */
import type { Logger, ServiceBroker } from "moleculer";
import {
	FINAL_STATUSES,
	type SocketErrorPayload,
	type SubmitResult,
	type TaskBody,
	type TaskQueryView,
	type TaskStatus,
	type TaskStatusEvent
} from "../../lib/contracts.ts";
import { fireTimesBetween, nextFireTime, nextFireTimes, type Bounds, type Schedule } from "../../lib/cron/index.ts";
import { rendezvousOwner } from "../../lib/strategies/index.ts";
import { TimerHeap } from "../../lib/timer-heap.ts";
import type { FireOutcome, FireRow, JobRow } from "../../models/job.model.ts";
import type { JobStore } from "./store.ts";

export interface SchedulerOptions {
	/** A fire later than this is a misfire, handled by the job's misfire policy, ms. */
	misfireThreshold: number;
	/** Missed fire times recorded one by one, per job and occasion (the rest are counted). */
	maxMissedRecords: number;
	/** How often stale claims and idle delay-after-finish jobs are looked at, ms. */
	recoveryInterval: number;
	/** A claim unsettled for this long is completed by the job's owner, ms. */
	staleClaimAfter: number;
	/** Fires in flight at once. */
	fireConcurrency: number;
}

export interface FireEvent {
	jobId: string;
	fireTime: string;
	outcome: FireOutcome;
	taskIds: string[];
	manual: boolean;
	/** firedAt - fireTime, ms, when a task was created. */
	lateness: number | null;
	node: string;
	detail: string | null;
}

interface ArmedJob {
	row: JobRow;
	schedule: Schedule;
	task: TaskBody;
	bounds: Bounds;
	/** Tasks of the latest run not yet final. */
	pending: Set<string>;
	lastRun: { fireTime: number; taskIds: string[] } | null;
}

/** Fires claimed and submitted together. */
const BATCH_SIZE = 500;

/** Tasks whose status is asked for in one call. */
const STATUS_BATCH = 5000;

/**
 * Runs `work` on every item, at most `limit` at a time. Every item is tried; the first failure
 * is thrown once all are done.
 */
async function eachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
	let next = 0;
	const errors: unknown[] = [];
	const lane = async () => {
		while (next < items.length) await work(items[next++]).catch(err => errors.push(err));
	};
	await Promise.all(Array.from({ length: Math.min(Math.max(limit, 1), items.length) }, lane));
	if (errors.length > 0) throw errors[0];
}

/** Errors of a submit that mean "nobody can take this task", not "try again". */
const NO_TERMINAL_TYPES = new Set(["NO_MATCHING_TERMINAL", "TERMINAL_NOT_FOUND", "TERMINAL_DISABLED"]);

export class Scheduler {
	private readonly broker: ServiceBroker;
	private readonly logger: Logger;
	private readonly store: JobStore;
	private readonly options: SchedulerOptions;
	private readonly jobs = new Map<string, ArmedJob>();
	private readonly taskToJob = new Map<string, { jobId: string; fireTime: number }>();
	private readonly heap: TimerHeap;
	private owners: string[];
	private active = 0;
	private readonly waiting: (() => void)[] = [];
	private recovering = false;

	constructor(deps: { broker: ServiceBroker; logger: Logger; store: JobStore; options: SchedulerOptions }) {
		this.broker = deps.broker;
		this.logger = deps.logger;
		this.store = deps.store;
		this.options = deps.options;
		this.owners = [this.broker.nodeID];
		this.heap = new TimerHeap(due => void this.onDue(due));
	}

	get armedCount(): number {
		return this.jobs.size;
	}

	/** Time the job is armed for on this replica, if it is. */
	armedAt(jobId: string): number | undefined {
		return this.heap.timeOf(jobId);
	}

	// ------------------------------------------------------------ ownership

	ownerOf(jobId: string): string {
		return rendezvousOwner(jobId, this.owners) ?? this.broker.nodeID;
	}

	owns(jobId: string): boolean {
		return this.ownerOf(jobId) === this.broker.nodeID;
	}

	/** Replicas changed: arm the jobs now ours, drop the ones no longer ours. */
	async setOwners(nodeIDs: string[]): Promise<void> {
		const owners = [...new Set([...nodeIDs, this.broker.nodeID])].sort();
		if (owners.join() === this.owners.join()) return;
		this.owners = owners;
		await this.resync();
	}

	/** Loads every job and arms the ones this replica owns (start-up, membership changes). */
	async resync(): Promise<void> {
		const now = Date.now();
		const rows = await this.store.all();
		const last = await this.store.lastFireTimes();
		const seen = new Set<string>();
		const toArm: JobRow[] = [];
		for (const row of rows) {
			seen.add(row.id);
			if (!this.owns(row.id)) {
				this.disarm(row.id);
				continue;
			}
			const armed = this.jobs.get(row.id);
			if (armed && armed.row.version === row.version) continue;
			toArm.push(row);
		}
		for (const id of this.jobs.keys()) if (!seen.has(id)) this.disarm(id);
		if (toArm.length === 0) return;
		// Thousands of jobs may be ours at once (start-up, a replica left): their last runs, and
		// whether those runs' tasks are still going, are asked for all of them in one go rather
		// than two round trips per job.
		const lastRuns = await this.store.lastRuns();
		const running = toArm.flatMap(row => {
			const run = lastRuns.get(row.id);
			return run && run.finishedAt === null ? (JSON.parse(run.taskIds ?? "[]") as string[]) : [];
		});
		const final = await this.finalTasks(running);
		const known = (row: JobRow) => ({
			lastRun: lastRuns.get(row.id) ?? null,
			isFinal: (taskId: string) => final.has(taskId)
		});
		// Arms that still wait (on missed fires, say) go side by side: one after the other, the last
		// would be armed long after the first.
		await eachLimited(toArm, this.options.fireConcurrency, row => this.arm(row, last.get(row.id), now, known(row)));
	}

	/** A job was created, changed or removed somewhere: re-arm it if it is ours. */
	async onJobChanged(jobId: string): Promise<void> {
		if (!this.owns(jobId)) return this.disarm(jobId);
		const row = await this.store.get(jobId);
		if (!row) return this.disarm(jobId);
		const armed = this.jobs.get(jobId);
		if (armed && armed.row.version === row.version) return;
		await this.arm(row, (await this.store.lastFireTimes([jobId])).get(jobId), Date.now());
	}

	stop(): void {
		this.heap.stop();
	}

	// ------------------------------------------------------------ arming

	disarm(jobId: string): void {
		const job = this.jobs.get(jobId);
		if (!job) return;
		for (const taskId of job.pending) this.taskToJob.delete(taskId);
		this.jobs.delete(jobId);
		this.heap.delete(jobId);
	}

	/**
	 * Takes a job on: learns its last run, deals with the fire times missed since its last
	 * recorded one (misfire policy), and arms its timer for the next. `known`: its last run and
	 * which tasks are final, when the caller has them already.
	 */
	async arm(
		row: JobRow,
		lastFireAt: number | undefined,
		now: number,
		known?: { lastRun: FireRow | null; isFinal(taskId: string): boolean }
	): Promise<void> {
		this.disarm(row.id);
		if (!row.enabled) return;
		const schedule = JSON.parse(row.schedule) as Schedule;
		const job: ArmedJob = {
			row,
			schedule,
			task: JSON.parse(row.task) as TaskBody,
			bounds: { anchor: row.startAt ?? row.createdAt, startAt: row.startAt, endAt: row.endAt },
			pending: new Set(),
			lastRun: null
		};
		this.jobs.set(row.id, job);

		const lastRun = known ? known.lastRun : await this.store.lastRun(row.id);
		let finishedAt: number | null = null;
		if (lastRun) {
			const taskIds = JSON.parse(lastRun.taskIds ?? "[]") as string[];
			job.lastRun = { fireTime: lastRun.fireTime, taskIds };
			finishedAt = lastRun.finishedAt;
			if (finishedAt === null) {
				for (const taskId of taskIds)
					if (!(known ? known.isFinal(taskId) : await this.isFinal(taskId))) this.track(job, taskId, lastRun.fireTime);
				if (job.pending.size === 0) {
					finishedAt = now;
					await this.store.finished(row.id, lastRun.fireTime, now);
				}
			}
		}

		if ("delayAfterFinish" in schedule) {
			if (job.pending.size > 0) return; // armed when the run ends
			const next = finishedAt !== null ? finishedAt + schedule.delayAfterFinish : (row.startAt ?? row.createdAt);
			if (row.endAt === null || next <= row.endAt) this.heap.set(row.id, next);
			return;
		}

		// Fire times after the job's creation: none at the instant itself, which its view (the next
		// fire times from now) never shows.
		const last = lastFireAt ?? row.createdAt;
		// Fire times paused over are misfires however recent: none is fired as if on time.
		const cutoff = Math.min(now, Math.max(now - this.options.misfireThreshold, row.resumedAt ?? -Infinity));
		const missed = fireTimesBetween(schedule, last, cutoff, job.bounds, this.options.maxMissedRecords);
		if (missed.times.length > 0) await this.misfire(job, missed.times, missed.more, now);
		const from = Math.max(last, cutoff, missed.times.at(-1) ?? -Infinity);
		const next = nextFireTime(schedule, from, job.bounds);
		if (next !== null) this.heap.set(row.id, next);
	}

	/**
	 * Fire times that passed unfired (the scheduler was down, the job was paused, the process
	 * stalled): `skip` records them, `fire_once` fires the newest, `catch_up` fires those within
	 * the catch-up window. None is dropped without a ledger row (beyond `maxMissedRecords`, the
	 * rest are counted in the first row's detail).
	 */
	private async misfire(job: ArmedJob, times: number[], more: number, now: number): Promise<void> {
		const row = job.row;
		const label = (t: number): FireOutcome =>
			row.pausedAt !== null && t >= row.pausedAt && (row.resumedAt === null || t <= row.resumedAt) ? "PAUSED" : "MISSED";
		const note = (i: number) =>
			i === 0 && more > 0 ? `${more} earlier fire time(s) also missed, not recorded one by one` : null;
		const record = (t: number, i: number) =>
			this.recordUnfired(
				row.id,
				t,
				label(t),
				note(i) ?? `${label(t) === "PAUSED" ? "paused" : "not fired in time"}; policy ${row.misfirePolicy}`,
				now
			);
		switch (row.misfirePolicy) {
			case "skip":
				for (const [i, t] of times.entries()) await record(t, i);
				break;
			case "fire_once":
				for (const [i, t] of times.slice(0, -1).entries()) await record(t, i);
				await this.fireAt(
					job,
					times[times.length - 1],
					"CAUGHT_UP",
					`caught up (misfire policy fire_once, ${times.length + more} missed)`
				);
				break;
			case "catch_up":
				for (const [i, t] of times.entries()) {
					if (now - t <= row.catchUpWindowMs)
						await this.fireAt(job, t, "CAUGHT_UP", "caught up (misfire policy catch_up)");
					else await record(t, i);
				}
				break;
		}
	}

	private async recordUnfired(
		jobId: string,
		fireTime: number,
		outcome: FireOutcome,
		detail: string,
		now: number
	): Promise<void> {
		if (await this.store.record(jobId, fireTime, outcome, this.broker.nodeID, now, detail))
			this.announce({ jobId, fireTime, outcome, taskIds: [], manual: false, firedAt: null, detail });
	}

	// ------------------------------------------------------------ firing

	/**
	 * Fire times that came due together. Plain fires go out in batches — one claim INSERT, one
	 * task INSERT, one ledger UPDATE per batch — so that a burst of thousands costs a few
	 * statements, not thousands. Late ones (misfires) and overlap-sensitive ones go one by one.
	 */
	private async onDue(due: { key: string; at: number }[]): Promise<void> {
		const now = Date.now();
		const batch: { job: ArmedJob; at: number }[] = [];
		const work: Promise<unknown>[] = [];
		const failed = (key: string, at: number) => (err: unknown) =>
			this.logger.error(`Fire of job ${key} at ${new Date(at).toISOString()} failed`, err);
		for (const { key, at } of due) {
			const job = this.jobs.get(key);
			if (!job) continue;
			// Arm the next one first: a slow fire must not delay it.
			if (!("delayAfterFinish" in job.schedule)) {
				const next = nextFireTime(job.schedule, at, job.bounds);
				if (next !== null) this.heap.set(key, next);
			}
			if (now - at > this.options.misfireThreshold) work.push(this.misfire(job, [at], 0, now).catch(failed(key, at)));
			else if (job.row.overlapPolicy !== "allow" && job.pending.size > 0)
				work.push(this.fireAt(job, at, "FIRED").catch(failed(key, at)));
			else batch.push({ job, at });
		}
		const batches: Promise<void>[] = [];
		const settles: { settle: () => Promise<void>; first: { key: string; at: number } }[] = [];
		for (let i = 0; i < batch.length; i += BATCH_SIZE) {
			const chunk = batch.slice(i, i + BATCH_SIZE);
			const first = { key: chunk[0].job.row.id, at: chunk[0].at };
			batches.push(
				this.fireBatch(chunk).then(
					settle => void (settle && settles.push({ settle, first })),
					failed(first.key, first.at)
				)
			);
		}
		// The ledger rows and events of a tick once all its tasks are in: settled as each batch's
		// tasks went in, they queued before the next batches' inserts and made those later.
		await Promise.all(batches);
		await Promise.all(settles.map(({ settle, first }) => settle().catch(failed(first.key, first.at))));
		await Promise.all(work);
	}

	/**
	 * Claims a batch of fires and submits the tasks of those it won; answers what settles them
	 * (their ledger rows, their events), for the caller to run.
	 */
	private async fireBatch(items: { job: ArmedJob; at: number }[]): Promise<(() => Promise<void>) | undefined> {
		await this.slot();
		try {
			const won = await this.store.claimMany(
				items.map(i => ({ jobId: i.job.row.id, fireTime: i.at })),
				this.broker.nodeID,
				Date.now()
			);
			const mine = items.filter(i => won.has(`${i.job.row.id}:${i.at}`));
			if (mine.length === 0) return undefined;
			// If this fails, the claims stay CLAIMED and recovery completes each (same idempotency keys).
			const results = await this.broker.call<(SubmitResult | { error: SocketErrorPayload })[], { tasks: TaskBody[] }>(
				"dispatcher.submitMany",
				{
					tasks: mine.map(i => ({ ...i.job.task, idempotencyKey: `job:${i.job.row.id}:${i.at}` }))
				}
			);
			const firedAt = Date.now();
			const fired: { jobId: string; fireTime: number; taskIds: string[] }[] = [];
			const refused: { jobId: string; fireTime: number; detail: string }[] = [];
			for (const [k, { job, at }] of mine.entries()) {
				const result = results[k];
				if ("error" in result) {
					if (!NO_TERMINAL_TYPES.has(result.error.type)) continue; // left for recovery
					refused.push({ jobId: job.row.id, fireTime: at, detail: result.error.message });
					continue;
				}
				const taskIds = result.taskIds ?? [result.taskId];
				fired.push({ jobId: job.row.id, fireTime: at, taskIds });
				// Tracked at once: a task may end before its fire is settled.
				for (const taskId of job.pending) this.taskToJob.delete(taskId);
				job.pending.clear();
				job.lastRun = { fireTime: at, taskIds };
				for (const taskId of taskIds) this.track(job, taskId, at);
			}
			return async () => {
				for (const r of refused) {
					await this.store.settle(r.jobId, r.fireTime, { outcome: "NO_TERMINAL", detail: r.detail });
					this.announce({ ...r, outcome: "NO_TERMINAL", taskIds: [], manual: false, firedAt: null });
				}
				await this.store.settleMany("FIRED", firedAt, fired);
				// An event nobody listens to still costs its broadcast: asked once per batch, not per fire.
				if (!this.broker.hasEventListener("job.fire")) return;
				for (const f of fired) this.announce({ ...f, outcome: "FIRED", manual: false, firedAt, detail: null });
			};
		} finally {
			this.release();
		}
	}

	/** Claims (jobId, fireTime) and, if this replica won it, fires. */
	async fireAt(
		job: ArmedJob,
		fireTime: number,
		outcome: "FIRED" | "CAUGHT_UP",
		detail?: string,
		manual = false
	): Promise<string[] | null> {
		await this.slot();
		try {
			if (!(await this.store.claim(job.row.id, fireTime, this.broker.nodeID, Date.now(), manual))) return null;
			return await this.complete(job, fireTime, outcome, detail ?? null, manual);
		} finally {
			this.release();
		}
	}

	/** Settles a claimed fire: overlap policy, the task (idempotent per fire), the ledger row. */
	private async complete(
		job: ArmedJob,
		fireTime: number,
		outcome: "FIRED" | "CAUGHT_UP",
		detail: string | null,
		manual: boolean
	): Promise<string[] | null> {
		const jobId = job.row.id;
		if (job.row.overlapPolicy !== "allow" && job.pending.size > 0) {
			const running = [...job.pending];
			if (job.row.overlapPolicy === "forbid") {
				const why = `the previous run (${running.join(", ")}) is still running`;
				await this.store.settle(jobId, fireTime, { outcome: "SKIPPED_OVERLAP", detail: why });
				this.announce({ jobId, fireTime, outcome: "SKIPPED_OVERLAP", taskIds: [], manual, firedAt: null, detail: why });
				return [];
			}
			for (const taskId of running) await this.cancelTask(taskId);
			detail = [detail, `replaced the previous run (${running.join(", ")})`].filter(Boolean).join("; ");
		}
		let result: SubmitResult;
		try {
			result = await this.broker.call<SubmitResult, TaskBody>("dispatcher.submit", {
				...job.task,
				idempotencyKey: `job:${jobId}:${fireTime}`
			});
		} catch (err) {
			const type = (err as { type?: string }).type ?? "";
			if (!NO_TERMINAL_TYPES.has(type)) throw err; // the claim stays; recovery completes it
			const why = (err as Error).message;
			await this.store.settle(jobId, fireTime, { outcome: "NO_TERMINAL", detail: why });
			this.announce({ jobId, fireTime, outcome: "NO_TERMINAL", taskIds: [], manual, firedAt: null, detail: why });
			return [];
		}
		const taskIds = result.taskIds ?? [result.taskId];
		const firedAt = Date.now();
		await this.store.settle(jobId, fireTime, { outcome, taskIds, firedAt, detail });
		for (const taskId of job.pending) this.taskToJob.delete(taskId);
		job.pending.clear();
		job.lastRun = { fireTime, taskIds };
		for (const taskId of taskIds) this.track(job, taskId, fireTime);
		this.announce({ jobId, fireTime, outcome, taskIds, manual, firedAt, detail });
		return taskIds;
	}

	/** Run now: a fire at this moment, outside the schedule. */
	async runNow(row: JobRow): Promise<{ fireTime: number; taskIds: string[] }> {
		const job = this.jobs.get(row.id) ?? (await this.transient(row));
		const fireTime = Date.now();
		const taskIds = await this.fireAt(job, fireTime, "FIRED", "run now", true);
		return { fireTime, taskIds: taskIds ?? [] };
	}

	/** Cancels the tasks of the job's latest run that are not final yet. */
	async cancelRunning(row: JobRow): Promise<string[]> {
		const lastRun = await this.store.lastRun(row.id);
		const cancelled: string[] = [];
		for (const taskId of JSON.parse(lastRun?.taskIds ?? "[]") as string[])
			if (await this.cancelTask(taskId)) cancelled.push(taskId);
		return cancelled;
	}

	/** A task reached a final state: a run of one of our jobs may have ended. */
	async onTaskStatus(event: TaskStatusEvent): Promise<void> {
		if (!FINAL_STATUSES.has(event.status)) return;
		const link = this.taskToJob.get(event.taskId);
		if (!link) return;
		this.taskToJob.delete(event.taskId);
		const job = this.jobs.get(link.jobId);
		if (!job || !job.pending.delete(event.taskId) || job.pending.size > 0) return;
		const now = Date.now();
		await this.store.finished(link.jobId, link.fireTime, now);
		if ("delayAfterFinish" in job.schedule) {
			const next = now + job.schedule.delayAfterFinish;
			if (job.row.endAt === null || next <= job.row.endAt) this.heap.set(link.jobId, next);
		}
	}

	/** Completes claims whose firer died between claiming and settling. */
	async recover(): Promise<void> {
		if (this.recovering) return;
		this.recovering = true;
		try {
			for (;;) {
				const stale = await this.store.staleClaims(Date.now() - this.options.staleClaimAfter, 100);
				const byJob = new Map<string, typeof stale>();
				for (const claim of stale)
					if (this.owns(claim.jobId)) byJob.set(claim.jobId, [...(byJob.get(claim.jobId) ?? []), claim]);
				let completed = 0;
				// A replica killed mid-batch leaves hundreds: jobs side by side, each job's claims in turn.
				await eachLimited([...byJob.values()], this.options.fireConcurrency, async claims => {
					const row = await this.store.get(claims[0].jobId);
					if (!row) return;
					const job = this.jobs.get(row.id) ?? (await this.transient(row));
					for (const claim of claims) {
						this.logger.info(
							`Completing the stale claim of job ${row.id} at ${new Date(claim.fireTime).toISOString()}`
						);
						await this.complete(
							job,
							claim.fireTime,
							"FIRED",
							"completed after its first claimant stopped",
							claim.manual
						).then(
							() => completed++,
							err => this.logger.warn(`Stale claim of job ${row.id} not completed yet: ${(err as Error).message}`)
						);
					}
				});
				// A full page may hide more of ours behind it; go on while that gets somewhere.
				if (stale.length < 100 || completed === 0) break;
			}
		} finally {
			this.recovering = false;
		}
	}

	/** The next `count` fire times of a job, for its view. */
	upcoming(row: JobRow, count: number, now = Date.now()): number[] {
		if (!row.enabled) return [];
		const schedule = JSON.parse(row.schedule) as Schedule;
		if ("delayAfterFinish" in schedule) {
			const armed = this.heap.timeOf(row.id);
			return armed === undefined ? [] : [armed];
		}
		return nextFireTimes(
			schedule,
			now,
			{ anchor: row.startAt ?? row.createdAt, startAt: row.startAt, endAt: row.endAt },
			count
		);
	}

	// ------------------------------------------------------------ helpers

	private track(job: ArmedJob, taskId: string, fireTime: number): void {
		job.pending.add(taskId);
		this.taskToJob.set(taskId, { jobId: job.row.id, fireTime });
	}

	private async transient(row: JobRow): Promise<ArmedJob> {
		return {
			row,
			schedule: JSON.parse(row.schedule) as Schedule,
			task: JSON.parse(row.task) as TaskBody,
			bounds: { anchor: row.startAt ?? row.createdAt, startAt: row.startAt, endAt: row.endAt },
			pending: new Set(),
			lastRun: null
		};
	}

	/** Those of the tasks that are final (or gone), in batches; one by one if the dispatcher cannot. */
	private async finalTasks(taskIds: string[]): Promise<Set<string>> {
		const final = new Set<string>();
		for (let i = 0; i < taskIds.length; i += STATUS_BATCH) {
			const chunk = taskIds.slice(i, i + STATUS_BATCH);
			let statuses: Record<string, string>;
			try {
				statuses = await this.broker.call<Record<string, string>, { taskIds: string[] }>("dispatcher.statuses", {
					taskIds: chunk
				});
			} catch (err) {
				// A dispatcher of an older version, in a rolling upgrade.
				if ((err as { type?: string }).type !== "SERVICE_NOT_FOUND") throw err;
				for (const taskId of chunk) if (await this.isFinal(taskId)) final.add(taskId);
				continue;
			}
			for (const taskId of chunk) {
				const status = statuses[taskId];
				if (status === undefined || FINAL_STATUSES.has(status as TaskStatus)) final.add(taskId);
			}
		}
		return final;
	}

	private async isFinal(taskId: string): Promise<boolean> {
		try {
			const view = await this.broker.call<TaskQueryView, { taskId: string }>("dispatcher.query", { taskId });
			return FINAL_STATUSES.has(view.status);
		} catch (err) {
			if ((err as { type?: string }).type === "TASK_NOT_FOUND") return true;
			throw err;
		}
	}

	private async cancelTask(taskId: string): Promise<boolean> {
		try {
			await this.broker.call("dispatcher.cancel", { id: taskId });
			return true;
		} catch (err) {
			const type = (err as { type?: string }).type;
			if (type === "TASK_FINISHED" || type === "TASK_NOT_FOUND") return false;
			throw err;
		}
	}

	private announce(fire: {
		jobId: string;
		fireTime: number;
		outcome: FireOutcome;
		taskIds: string[];
		manual: boolean;
		firedAt: number | null;
		detail: string | null;
	}): void {
		const event: FireEvent = {
			jobId: fire.jobId,
			fireTime: new Date(fire.fireTime).toISOString(),
			outcome: fire.outcome,
			taskIds: fire.taskIds,
			manual: fire.manual,
			lateness: fire.firedAt === null ? null : fire.firedAt - fire.fireTime,
			node: this.broker.nodeID,
			detail: fire.detail
		};
		void this.broker.broadcast("job.fire", event).catch(() => undefined);
	}

	/** Bounds the fires in flight: a burst of thousands queues here, not in the database pool. */
	private async slot(): Promise<void> {
		if (this.active < this.options.fireConcurrency) {
			this.active++;
			return;
		}
		await new Promise<void>(resolve => this.waiting.push(resolve));
	}

	private release(): void {
		const next = this.waiting.shift();
		if (next) next();
		else this.active--;
	}
}
