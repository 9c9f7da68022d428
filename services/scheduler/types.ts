/** Types shared by the scheduler's modules. */
import type { StoredTask } from "./secrets.ts";
import type { Bounds, Schedule } from "../../lib/cron/index.ts";
import type { JobRow } from "../../models/job.model.ts";

export interface SchedulerOptions {
	/**
	 * The misfire grace, ms: a fire time at most this late is fired as if on time (Quartz's
	 * `misfireThreshold`). Later ones are misfires, left to the job's misfire policy; and when
	 * several fire times are late at once (a restart, a stalled process) the policy decides
	 * for all of them, so that no more than one of them fires unless the policy is `catch_up`.
	 * @defaultValue 5000
	 */
	misfireThreshold: number;
	/** Missed fire times recorded one by one, per job and occasion (the rest are counted). @defaultValue 1000 */
	maxMissedRecords: number;
	/**
	 * How often stale claims and idle delay-after-finish jobs are looked at, ms: a claim
	 * unsettled past `staleClaimAfter` is completed, and a delay-after-finish job with no timer
	 * is re-armed from its last run's end (read from the tasks table if the run is still open).
	 * @defaultValue 1000
	 */
	recoveryInterval: number;
	/** A claim unsettled for this long is completed by the job's owner, ms. @defaultValue 5000 */
	staleClaimAfter: number;
	/** A replica's lease on its claims runs this long without renewal, ms (lib/lease.ts). @defaultValue 6000 */
	leaseTtl: number;
	/**
	 * How often the tasks of every open run are read from the tasks table, ms: the backstop
	 * for a lost `task.statuses` broadcast, which would otherwise leave a `forbid` job skipping
	 * and a delay-after-finish job waiting.
	 * @defaultValue 5000
	 */
	completionCheckInterval: number;
	/** Fires in flight at once. @defaultValue 64 */
	fireConcurrency: number;
	/** Adds a `job` label (the job id) to `tern_job_fires_total`: one series per job. @defaultValue false */
	metricsJobLabels?: boolean;
}

/** The latest run of a job whose tasks are not all final yet. */
export interface OpenRun {
	fireTime: number;
	/** Its tasks not known to be final. */
	pending: Set<string>;
}

/** A job this replica owns (or handles once, for run-now and recovery). */
export interface ArmedJob {
	row: JobRow;
	schedule: Schedule;
	/** Its secrets still sealed: the fire's submit opens them (see secrets.ts). */
	task: StoredTask;
	bounds: Bounds;
	run: OpenRun | null;
}

export function armedJob(row: JobRow): ArmedJob {
	return {
		row,
		schedule: JSON.parse(row.schedule) as Schedule,
		task: JSON.parse(row.task) as StoredTask,
		bounds: boundsOf(row),
		run: null
	};
}

export function boundsOf(row: JobRow): Bounds {
	return { anchor: row.startAt ?? row.createdAt, startAt: row.startAt, endAt: row.endAt };
}
