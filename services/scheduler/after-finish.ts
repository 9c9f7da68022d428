/**
 * Delay-after-finish jobs: the next fire comes `delay` after the previous run ended, so the
 * timer is armed when a run ends (runs.ts says when), not from a calendar. A job left with no
 * timer and no open run (its run's end never noticed, its fire failed) is taken up again by
 * `takeUpIdle()`, on the recovery timer.
 */
import { nextFireTime } from "../../lib/cron/index.ts";
import type { TimerHeap } from "../../lib/timer-heap.ts";
import type { Firer } from "./firing.ts";
import type { RunBook } from "./runs.ts";
import type { JobStore } from "./store.ts";
import type { ArmedJob } from "./types.ts";

export class AfterFinish {
	private readonly heap: TimerHeap;
	private readonly jobs: ReadonlyMap<string, ArmedJob>;
	private readonly runs: RunBook;
	private readonly store: JobStore;
	private readonly firer: Firer;
	/** Jobs whose fire is in flight: neither idle nor running yet. */
	private readonly firing = new Set<ArmedJob>();

	constructor(deps: { heap: TimerHeap; jobs: ReadonlyMap<string, ArmedJob>; runs: RunBook; store: JobStore; firer: Firer }) {
		this.heap = deps.heap;
		this.jobs = deps.jobs;
		this.runs = deps.runs;
		this.store = deps.store;
		this.firer = deps.firer;
	}

	/** For a job that never ran: the "end" that makes its first fire its startAt (or its creation). */
	beforeFirst(job: ArmedJob): number {
		const delay = "delayAfterFinish" in job.schedule ? job.schedule.delayAfterFinish : 0;
		return (job.row.startAt ?? job.row.createdAt) - delay;
	}

	/** Arms the job for `delay` after a run that ended at `endedAt` (within endAt). */
	arm(job: ArmedJob, endedAt: number): void {
		if (!("delayAfterFinish" in job.schedule) || this.jobs.get(job.row.id) !== job) return;
		const next = nextFireTime(job.schedule, endedAt, job.bounds);
		if (next !== null) this.heap.set(job.row.id, next);
	}

	/** A fire that created no task (NO_TERMINAL, SKIPPED_OVERLAP) ended at once: the next comes `delay` after it. */
	async fire(job: ArmedJob, at: number): Promise<void> {
		this.firing.add(job);
		try {
			await this.firer.fireAt(job, at, "FIRED", null);
		} finally {
			this.firing.delete(job);
		}
		if (job.run === null && !this.heap.has(job.row.id)) this.arm(job, Date.now());
	}

	/** Jobs with no timer: an open run's end is read from the tasks table; one with none is re-armed from its last run's end. */
	async takeUpIdle(): Promise<void> {
		const idle = () =>
			[...this.jobs.values()].filter(
				job => "delayAfterFinish" in job.schedule && !this.heap.has(job.row.id) && !this.firing.has(job)
			);
		await this.runs.check(idle().filter(job => job.run !== null));
		for (const job of idle()) {
			if (job.run !== null) continue;
			const lastRun = await this.store.lastRun(job.row.id);
			if (this.heap.has(job.row.id) || this.firing.has(job) || job.run !== null) continue;
			if (lastRun && lastRun.finishedAt === null) {
				// A run this replica lost track of.
				this.runs.begin(job, lastRun.fireTime, JSON.parse(lastRun.taskIds ?? "[]") as string[]);
				await this.runs.check([job]);
				if (job.run !== null || this.heap.has(job.row.id)) continue;
			}
			this.arm(job, lastRun?.finishedAt ?? lastRun?.firedAt ?? this.beforeFirst(job));
		}
	}
}
