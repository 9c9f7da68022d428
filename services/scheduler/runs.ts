/**
 * Run completion: which tasks each job's open run still waits on, and when the run ended.
 *
 * A run ends when all its tasks are final, and that is read from the tasks table (through
 * `dispatcher.statuses`): a `task.statuses` broadcast says which tasks to look at sooner, but
 * one lost broadcast must not leave a `forbid` job skipping or a delay-after-finish job
 * waiting forever, so `check()` on a timer reads every open run's tasks, in one query per
 * 5,000 tasks.
 */
import { FINAL_STATUSES, type TaskStatusEvent } from "../../lib/contracts.ts";
import type { FireRow } from "../../models/job.model.ts";
import type { DispatcherClient } from "./dispatcher-client.ts";
import type { JobStore } from "./store.ts";
import type { ArmedJob, OpenRun } from "./types.ts";

export class RunBook {
	private readonly store: JobStore;
	private readonly dispatcher: DispatcherClient;
	private readonly jobs: ReadonlyMap<string, ArmedJob>;
	private readonly onEnded: (job: ArmedJob, at: number) => void;
	/** taskId → the job whose open run it belongs to. */
	private readonly byTask = new Map<string, string>();

	/** @param onEnded called once per run, after its end is in the ledger */
	constructor(deps: {
		store: JobStore;
		dispatcher: DispatcherClient;
		jobs: ReadonlyMap<string, ArmedJob>;
		onEnded: (job: ArmedJob, at: number) => void;
	}) {
		this.store = deps.store;
		this.dispatcher = deps.dispatcher;
		this.jobs = deps.jobs;
		this.onEnded = deps.onEnded;
	}

	/** The job's tasks still running, as far as is known. */
	running(job: ArmedJob): string[] {
		return job.run ? [...job.run.pending] : [];
	}

	/** A new run of the job began: it replaces the previous one (which is not waited on any more). */
	begin(job: ArmedJob, fireTime: number, taskIds: Iterable<string>): void {
		this.forget(job);
		const run: OpenRun = { fireTime, pending: new Set(taskIds) };
		if (run.pending.size === 0) return;
		job.run = run;
		// A job handled once (run-now on a replica that does not own it, recovery) is not followed.
		if (this.jobs.get(job.row.id) !== job) return;
		for (const taskId of run.pending) this.byTask.set(taskId, job.row.id);
	}

	/**
	 * Takes up a job's last run from the ledger (a job newly armed here): still open if some of
	 * its tasks are not final in the tasks table, else ended now if the ledger did not say so.
	 * Answers when it ended: null while open, or when there was no run.
	 * @param isFinal what the caller read already, for many jobs at once
	 */
	async resume(job: ArmedJob, lastRun: FireRow | null, isFinal: ((taskId: string) => boolean) | undefined, now: number) {
		if (!lastRun) return null;
		if (lastRun.finishedAt !== null) return lastRun.finishedAt;
		const taskIds = JSON.parse(lastRun.taskIds ?? "[]") as string[];
		const final = isFinal ? new Set(taskIds.filter(isFinal)) : await this.dispatcher.finalTasks(taskIds);
		this.begin(
			job,
			lastRun.fireTime,
			taskIds.filter(t => !final.has(t))
		);
		if (job.run !== null) return null;
		await this.store.finished(job.row.id, lastRun.fireTime, now);
		return now;
	}

	forget(job: ArmedJob): void {
		for (const taskId of job.run?.pending ?? []) this.byTask.delete(taskId);
		job.run = null;
	}

	/** Announced statuses: final ones end their tasks; runs with tasks left are read from the tasks table. */
	async onStatuses(events: TaskStatusEvent[]): Promise<void> {
		const touched = new Set<ArmedJob>();
		for (const event of events) {
			if (!FINAL_STATUSES.has(event.status)) continue;
			const job = this.jobOf(event.taskId);
			if (!job?.run) continue;
			this.byTask.delete(event.taskId);
			job.run.pending.delete(event.taskId);
			touched.add(job);
		}
		const ended = [...touched].filter(job => job.run?.pending.size === 0);
		for (const job of ended) await this.end(job, job.run!);
		const open = [...touched].filter(job => job.run !== null);
		// A run of several tasks (sharding, broadcast) whose other tasks' events were lost.
		if (open.length > 0) await this.check(open);
	}

	/** Reads the open runs' tasks (of these jobs, or all) from the tasks table; ends the runs that ended. */
	async check(jobs: Iterable<ArmedJob> = this.jobs.values()): Promise<void> {
		const runs = [...jobs].flatMap(job => (job.run ? [{ job, run: job.run }] : []));
		if (runs.length === 0) return;
		const final = await this.dispatcher.finalTasks(runs.flatMap(({ run }) => [...run.pending]));
		for (const { job, run } of runs) {
			if (job.run !== run) continue; // replaced meanwhile
			for (const taskId of run.pending)
				if (final.has(taskId)) {
					run.pending.delete(taskId);
					this.byTask.delete(taskId);
				}
			if (run.pending.size === 0) await this.end(job, run);
		}
	}

	private jobOf(taskId: string): ArmedJob | undefined {
		const jobId = this.byTask.get(taskId);
		return jobId === undefined ? undefined : this.jobs.get(jobId);
	}

	/** Once per run: whoever gets here first (a broadcast, the check) clears it before writing. */
	private async end(job: ArmedJob, run: OpenRun): Promise<void> {
		if (job.run !== run) return;
		job.run = null;
		const now = Date.now();
		await this.store.finished(job.row.id, run.fireTime, now);
		this.onEnded(job, now);
	}
}
