/**
 * The scheduler's core: which jobs this replica owns, one timer for all of them, and what
 * happens when a fire time comes. Firing itself (claim, overlap, submit, settle) is firing.ts;
 * the fate of late fire times misfire-policy.ts; run ends runs.ts.
 *
 * Sharing. Each job belongs to one replica, chosen by rendezvous hashing over the live
 * scheduler nodes; when a replica leaves (Moleculer notices within 3 s) the others take its jobs
 * and apply each job's misfire policy to the fire times it missed.
 */
import type { Logger, ServiceBroker } from "moleculer";
import type { TaskStatusEvent } from "../../lib/contracts.ts";
import { fireTimesBetween, nextFireTime, nextFireTimes } from "../../lib/cron/index.ts";
import { TimerHeap } from "../../lib/timer-heap.ts";
import type { FireRow, JobRow } from "../../models/job.model.ts";
import { AfterFinish } from "./after-finish.ts";
import { DispatcherClient } from "./dispatcher-client.ts";
import type { Keyring } from "../../lib/keyring.ts";
import { Firer } from "./firing.ts";
import { Ledger } from "./ledger.ts";
import { JobMetrics } from "../../lib/metrics/jobs.ts";
import { eachLimited, Slots } from "./limit.ts";
import { planLate } from "./misfire-policy.ts";
import { Ownership } from "../../lib/owners.ts";
import { completeStaleClaims } from "./recovery.ts";
import { RunBook } from "./runs.ts";
import type { JobStore } from "./store.ts";
import { armedJob, boundsOf, type ArmedJob, type SchedulerOptions } from "./types.ts";

export type { SchedulerOptions } from "./types.ts";

/** What arm() may be told instead of asking: the job's last run, and which of its tasks are final. */
interface Known {
	lastRun: FireRow | null;
	isFinal(taskId: string): boolean;
}

export class Scheduler {
	private readonly broker: ServiceBroker;
	private readonly logger: Logger;
	private readonly store: JobStore;
	private readonly options: SchedulerOptions;
	private readonly dispatcher: DispatcherClient;
	private readonly firer: Firer;
	private readonly ledger: Ledger;
	private readonly runs: RunBook;
	private readonly jobs = new Map<string, ArmedJob>();
	private readonly heap: TimerHeap;
	private readonly ownership: Ownership;
	private readonly afterFinish: AfterFinish;
	private recovering = false;
	private checking = false;

	constructor(deps: { broker: ServiceBroker; logger: Logger; store: JobStore; options: SchedulerOptions; keyring: Keyring }) {
		this.broker = deps.broker;
		this.logger = deps.logger;
		this.store = deps.store;
		this.options = deps.options;
		this.ownership = new Ownership(this.broker.nodeID);
		this.heap = new TimerHeap(due => void this.onDue(due));
		this.dispatcher = new DispatcherClient(this.broker, deps.keyring);
		this.runs = new RunBook({
			store: this.store,
			dispatcher: this.dispatcher,
			jobs: this.jobs,
			onEnded: (job, at) => this.onRunEnded(job, at)
		});
		this.ledger = new Ledger(
			this.broker,
			this.store,
			new JobMetrics(this.broker.metrics, { jobLabels: this.options.metricsJobLabels })
		);
		this.firer = new Firer({
			nodeID: this.broker.nodeID,
			logger: this.logger,
			store: this.store,
			ledger: this.ledger,
			dispatcher: this.dispatcher,
			runs: this.runs,
			slots: new Slots(this.options.fireConcurrency)
		});
		this.afterFinish = new AfterFinish({
			heap: this.heap,
			jobs: this.jobs,
			runs: this.runs,
			store: this.store,
			firer: this.firer
		});
	}

	get armedCount(): number {
		return this.jobs.size;
	}

	stop(): void {
		this.heap.stop();
	}

	// ------------------------------------------------------------ ownership

	ownerOf(jobId: string): string {
		return this.ownership.ownerOf(jobId);
	}

	owns(jobId: string): boolean {
		return this.ownership.owns(jobId);
	}

	/** Replicas changed: arm the jobs now ours, drop the ones no longer ours. */
	async setOwners(nodeIDs: string[]): Promise<void> {
		if (this.ownership.set(nodeIDs)) await this.resync();
	}

	/**
	 * Loads every job and arms the ones this replica owns (start-up, membership changes). With
	 * `rearm` (the lease was lost: the fires claimed meanwhile were refused) a job armed already is
	 * armed again from its ledger, so that its misfire policy deals with the seconds refused.
	 */
	async resync(options: { rearm?: boolean } = {}): Promise<void> {
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
			if (armed && armed.row.version === row.version && !options.rearm) continue;
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
		const final = await this.dispatcher.finalTasks(running);
		const known = (row: JobRow): Known => ({
			lastRun: lastRuns.get(row.id) ?? null,
			isFinal: taskId => final.has(taskId)
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

	// ------------------------------------------------------------ arming

	disarm(jobId: string): void {
		const job = this.jobs.get(jobId);
		if (!job) return;
		this.runs.forget(job);
		this.jobs.delete(jobId);
		this.heap.delete(jobId);
	}

	/**
	 * Takes a job on: learns its last run (and whether it is still going, from the tasks
	 * table), deals with the fire times passed since its last recorded one (misfire policy),
	 * and arms its timer for the next.
	 */
	async arm(row: JobRow, lastFireAt: number | undefined, now: number, known?: Known): Promise<void> {
		this.disarm(row.id);
		if (!row.enabled) return;
		const job = armedJob(row);
		this.jobs.set(row.id, job);

		const lastRun = known ? known.lastRun : await this.store.lastRun(row.id);
		const finishedAt = await this.runs.resume(job, lastRun, known?.isFinal, now);

		if ("delayAfterFinish" in job.schedule) {
			if (job.run !== null) return; // armed when the run ends
			this.afterFinish.arm(job, finishedAt ?? this.afterFinish.beforeFirst(job));
			return;
		}

		// Fire times after the job's creation: none at the instant itself, which its view (the next
		// fire times from now) never shows.
		const last = lastFireAt ?? row.createdAt;
		const late = fireTimesBetween(job.schedule, last, now, job.bounds, this.options.maxMissedRecords);
		if (late.times.length > 0) await this.late(job, late.times, late.more, now);
		const next = nextFireTime(job.schedule, Math.max(last, now), job.bounds);
		if (next !== null) this.heap.set(row.id, next);
	}

	/** Fire times that passed unfired: the misfire policy decides (see misfire-policy.ts). */
	private async late(job: ArmedJob, times: number[], more: number, now: number): Promise<void> {
		const row = job.row;
		const plan = planLate({
			policy: row.misfirePolicy,
			times,
			more,
			now,
			grace: this.options.misfireThreshold,
			catchUpWindowMs: row.catchUpWindowMs,
			pausedAt: row.pausedAt,
			resumedAt: row.resumedAt
		});
		for (const u of plan.unfired) await this.ledger.unfired(row.id, u.time, u.outcome, u.detail, now);
		for (const f of plan.fire) await this.firer.fireAt(job, f.time, f.outcome, f.detail);
	}

	// ------------------------------------------------------------ firing

	/**
	 * Fire times that came due together. Plain fires go out in batches (firing.ts); late ones
	 * (misfires, several due at once) and overlap-sensitive ones one by one.
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
			if ("delayAfterFinish" in job.schedule) {
				work.push(this.afterFinish.fire(job, at).catch(failed(key, at)));
				continue;
			}
			// Arm the next one first: a slow fire must not delay it.
			let next = nextFireTime(job.schedule, at, job.bounds);
			if (next !== null && next <= now) {
				// The process stalled past more fire times than this one: all are late together.
				const later = fireTimesBetween(job.schedule, at, now, job.bounds, this.options.maxMissedRecords);
				next = nextFireTime(job.schedule, now, job.bounds);
				work.push(this.late(job, [at, ...later.times], later.more, now).catch(failed(key, at)));
			} else if (now - at > this.options.misfireThreshold) work.push(this.late(job, [at], 0, now).catch(failed(key, at)));
			else if (job.row.overlapPolicy !== "allow" && job.run !== null)
				work.push(this.firer.fireAt(job, at, "FIRED", null).catch(failed(key, at)));
			else batch.push({ job, at });
			if (next !== null) this.heap.set(key, next);
		}
		await this.firer.fireMany(batch);
		await Promise.all(work);
	}

	/** Run now: a fire at this moment, outside the schedule. */
	async runNow(row: JobRow): Promise<{ fireTime: number; taskIds: string[] }> {
		const job = this.jobs.get(row.id) ?? armedJob(row);
		const fireTime = Date.now();
		const taskIds = await this.firer.fireAt(job, fireTime, "FIRED", "run now", true);
		return { fireTime, taskIds: taskIds ?? [] };
	}

	/** Cancels the tasks of the job's latest run that are not final yet. */
	async cancelRunning(row: JobRow): Promise<string[]> {
		const lastRun = await this.store.lastRun(row.id);
		const cancelled: string[] = [];
		for (const taskId of JSON.parse(lastRun?.taskIds ?? "[]") as string[])
			if (await this.dispatcher.cancel(taskId)) cancelled.push(taskId);
		return cancelled;
	}

	// ------------------------------------------------------------ run ends

	/** Announced task statuses: runs of our jobs may have ended. */
	async onTaskStatuses(events: TaskStatusEvent[]): Promise<void> {
		await this.runs.onStatuses(events);
	}

	/** Every open run's tasks read from the tasks table: the backstop for lost announcements. */
	async checkOpenRuns(): Promise<void> {
		if (this.checking) return;
		this.checking = true;
		try {
			await this.runs.check();
		} finally {
			this.checking = false;
		}
	}

	private onRunEnded(job: ArmedJob, at: number): void {
		this.afterFinish.arm(job, at);
	}

	/**
	 * Completes claims whose firer died between claiming and settling, and takes up idle
	 * delay-after-finish jobs: one with no timer is re-armed from its last run's end, read from
	 * the tasks table if the run still looks open.
	 */
	async recover(): Promise<void> {
		if (this.recovering) return;
		this.recovering = true;
		try {
			await completeStaleClaims({
				store: this.store,
				firer: this.firer,
				logger: this.logger,
				staleBefore: Date.now() - this.options.staleClaimAfter,
				concurrency: this.options.fireConcurrency,
				owns: jobId => this.owns(jobId),
				jobOf: async jobId => {
					const row = await this.store.get(jobId);
					return row ? (this.jobs.get(row.id) ?? armedJob(row)) : null;
				}
			});
			await this.afterFinish.takeUpIdle();
		} finally {
			this.recovering = false;
		}
	}

	/**
	 * The consistency check's part here: fire claims of this replica's jobs left unsettled past
	 * `staleClaimAfter` (a claim without its task), completed now; what was found and how many settled.
	 */
	async reconcile(now = Date.now()): Promise<{ found: string[]; repaired: number }> {
		const stale = (await this.store.staleClaims(now - this.options.staleClaimAfter, 1000)).filter(c => this.owns(c.jobId));
		if (stale.length === 0) return { found: [], repaired: 0 };
		await this.recover();
		let repaired = 0;
		for (const claim of stale) if ((await this.store.fire(claim.jobId, claim.fireTime))?.outcome !== "CLAIMED") repaired++;
		return { found: stale.map(c => `${c.jobId}@${new Date(c.fireTime).toISOString()}`), repaired };
	}

	/** The next `count` fire times of a job, for its view. */
	upcoming(row: JobRow, count: number, now = Date.now()): number[] {
		if (!row.enabled) return [];
		const schedule = JSON.parse(row.schedule) as ArmedJob["schedule"];
		if ("delayAfterFinish" in schedule) {
			const armed = this.heap.timeOf(row.id);
			return armed === undefined ? [] : [armed];
		}
		return nextFireTimes(schedule, now, boundsOf(row), count);
	}
}
