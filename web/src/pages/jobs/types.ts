/** A job and a fire as `/api/jobs` answers them (services/scheduler/views.ts), and schedule wording. */
import type { TaskBody } from "../../api/types.ts";

export type Schedule = { cron: string; timezone?: string } | { every: number } | { delayAfterFinish: number } | { at: string };

export interface JobView {
	id: string;
	name: string;
	schedule: Schedule;
	task: TaskBody;
	misfirePolicy: "skip" | "fire_once" | "catch_up";
	overlapPolicy: "allow" | "forbid" | "replace";
	catchUpWindow: number;
	startAt: string | null;
	endAt: string | null;
	enabled: boolean;
	status: "active" | "paused" | "ended";
	nextFireTimes: string[];
	createdBy: string | null;
	createdAt: string;
	updatedAt: string;
}

export interface FireView {
	jobId: string;
	fireTime: string;
	outcome: string;
	manual: boolean;
	taskIds: string[];
	node: string | null;
	firedAt: string | null;
	lateness: number | null;
	detail: string | null;
}

export interface Preview {
	fireTimes: string[];
	timezone: string | null;
	note: string | null;
}

const ms = (n: number) =>
	n % 3_600_000 === 0
		? `${n / 3_600_000} h`
		: n % 60_000 === 0
			? `${n / 60_000} min`
			: n % 1000 === 0
				? `${n / 1000} s`
				: `${n} ms`;

export function describe(schedule: Schedule): string {
	if ("cron" in schedule) return `cron ${schedule.cron}${schedule.timezone ? ` (${schedule.timezone})` : ""}`;
	if ("every" in schedule) return `every ${ms(schedule.every)}`;
	if ("delayAfterFinish" in schedule) return `${ms(schedule.delayAfterFinish)} after each run ends`;
	return `once at ${new Date(schedule.at).toLocaleString()}`;
}

/** A time as seen in `zone` (the job's), for the preview. */
export function inZone(at: string, zone: string | null): string {
	try {
		return new Date(at).toLocaleString(undefined, { timeZone: zone ?? undefined, dateStyle: "medium", timeStyle: "medium" });
	} catch {
		return new Date(at).toLocaleString();
	}
}
