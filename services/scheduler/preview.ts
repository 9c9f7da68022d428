/**
 * `POST /api/jobs/preview`: the next fire times of a schedule before it is saved, computed by
 * the code that fires jobs, so that what a person sees is what will happen. The schedule is
 * checked as a job's is (the same messages, naming `schedule.cron` and so on).
 */
import { nextFireTimes, parseSchedule, ScheduleError, type Schedule } from "../../lib/cron/index.ts";
import { invalid, parseTime } from "./job-body.ts";

export interface PreviewParams {
	schedule: unknown;
	startAt?: string | null;
	endAt?: string | null;
	count?: number;
}

export interface PreviewResult {
	/** ISO-8601, UTC. */
	fireTimes: string[];
	/** The zone a cron schedule is read in (null: the server's, UTC in the image). */
	timezone: string | null;
	/** Why the list is short or empty (a delay after each run, a one-off in the past, an end date). */
	note: string | null;
}

const instant = (field: string, value: string | null | undefined): number | null => parseTime(field, value) ?? null;

export function previewFires(params: PreviewParams, now = Date.now()): PreviewResult {
	let schedule: Schedule;
	try {
		schedule = parseSchedule(params.schedule);
	} catch (err) {
		if (err instanceof ScheduleError) throw invalid(err.field, err.message);
		throw err;
	}
	const startAt = instant("startAt", params.startAt);
	const endAt = instant("endAt", params.endAt);
	if (startAt !== null && endAt !== null && endAt <= startAt) throw invalid("endAt", "'endAt' must be after 'startAt'");
	const count = params.count ?? 10;
	const times = nextFireTimes(schedule, now, { anchor: now, startAt, endAt }, count);
	let note: string | null = null;
	if ("delayAfterFinish" in schedule)
		note = `Each run starts ${schedule.delayAfterFinish} ms after the previous one ends: only the first fire is known.`;
	else if (times.length === 0) note = "This schedule fires no more.";
	else if (times.length < count) note = "No more fires after these.";
	return {
		fireTimes: times.map(t => new Date(t).toISOString()),
		timezone: "cron" in schedule ? (schedule.timezone ?? null) : null,
		note
	};
}
