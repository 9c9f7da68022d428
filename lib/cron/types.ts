/** A job's schedule in normal form, as stored. */
export type Schedule = { cron: string; timezone?: string } | { every: number } | { delayAfterFinish: number } | { at: string };

/** What a fire time is computed from besides the schedule itself. */
export interface Bounds {
	/** Fixed-rate schedules count from here (the job's startAt, else its creation). */
	anchor: number;
	startAt?: number | null;
	endAt?: number | null;
}

export class ScheduleError extends Error {
	readonly field: string;

	constructor(field: string, message: string) {
		super(message);
		this.name = "ScheduleError";
		this.field = field;
	}
}

/** Shortest fixed rate or delay, ms. */
export const MIN_INTERVAL_MS = 100;
