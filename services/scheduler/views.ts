import { shownJobTask, type StoredTask } from "./secrets.ts";
import type { Schedule } from "../../lib/cron/index.ts";
import type { FireRow, JobRow } from "../../models/job.model.ts";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function toJobView(row: JobRow, upcoming: number[]) {
	const schedule = JSON.parse(row.schedule) as Schedule;
	return {
		id: row.id,
		name: row.name,
		schedule,
		task: shownJobTask(JSON.parse(row.task) as StoredTask),
		misfirePolicy: row.misfirePolicy,
		overlapPolicy: row.overlapPolicy,
		catchUpWindow: row.catchUpWindowMs / 1000,
		startAt: iso(row.startAt),
		endAt: iso(row.endAt),
		enabled: row.enabled,
		status: !row.enabled ? "paused" : upcoming.length > 0 || "delayAfterFinish" in schedule ? "active" : "ended",
		nextFireTimes: upcoming.map(t => new Date(t).toISOString()),
		pausedAt: iso(row.pausedAt),
		createdBy: row.createdBy,
		createdAt: iso(row.createdAt),
		updatedAt: iso(row.updatedAt),
		version: row.version
	};
}

export function toFireView(row: FireRow) {
	const taskIds = row.taskIds ? (JSON.parse(row.taskIds) as string[]) : [];
	return {
		jobId: row.jobId,
		fireTime: iso(row.fireTime),
		outcome: row.outcome,
		manual: row.manual,
		taskId: taskIds[0] ?? null,
		taskIds,
		node: row.node,
		claimedAt: iso(row.claimedAt),
		firedAt: iso(row.firedAt),
		finishedAt: iso(row.finishedAt),
		lateness: row.firedAt === null ? null : row.firedAt - row.fireTime,
		detail: row.detail
	};
}
