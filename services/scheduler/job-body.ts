/**
 * A job body as the REST API takes it, made into a `jobs` row: the checks beyond what the
 * params validator can say (the schedule, the task's target, payload size and secrets, the dates), a
 * new job's row, and a change's fields (pausing and resuming stamp their times).
 */
import { DateTime } from "luxon";
import type { ServiceBroker } from "moleculer";
import { parseSchedule, ScheduleError, type Schedule } from "../../lib/cron/index.ts";
import { Errors } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import type { JobRow } from "../../models/job.model.ts";
import type { JobBody } from "./params.ts";
import { call } from "../../lib/actions.ts";
import type { Keyring } from "../../lib/keyring.ts";
import { sealJobTask, type StoredTask } from "./secrets.ts";

export function invalid(field: string, message: string) {
	return Errors.validation(message, [{ field, message }]);
}

/** An ISO-8601 date-time of a job body, as ms; a 422 naming `field` when it is not one. */
export function parseTime(field: string, value: string | null | undefined): number | null | undefined {
	if (value === undefined || value === null) return value;
	const t = DateTime.fromISO(value, { setZone: true });
	if (!t.isValid) throw invalid(field, `'${field}' must be an ISO-8601 date-time; got ${JSON.stringify(value)}`);
	return t.toMillis();
}

/** @param base the job being changed, for checks across fields (startAt before endAt) */
export async function jobFields(
	broker: ServiceBroker,
	maxPayloadBytes: number,
	body: Partial<JobBody>,
	keyring: Keyring,
	base?: JobRow
): Promise<Partial<JobRow>> {
	const fields: Partial<JobRow> = {};
	if (body.schedule !== undefined) {
		let schedule: Schedule;
		try {
			schedule = parseSchedule(body.schedule);
		} catch (err) {
			if (err instanceof ScheduleError) throw invalid(err.field, err.message);
			throw err;
		}
		fields.schedule = JSON.stringify(schedule);
	}
	if (body.task !== undefined) {
		const task = body.task;
		if (Boolean(task.terminalId) === Boolean(task.selector))
			throw invalid("task.terminalId", "Give the task either 'terminalId' or 'selector' (and not both)");
		if (task.selector?.strategy === "consistent_hash" && !task.selector.key)
			throw invalid("task.selector.key", "'task.selector.key' is required by strategy 'consistent_hash'");
		const bytes = task.payload === undefined ? 0 : Buffer.byteLength(JSON.stringify(task.payload));
		if (bytes > maxPayloadBytes) throw Errors.payloadTooLarge(bytes, maxPayloadBytes);
		if (task.terminalId) {
			const terminal = await call(broker, "terminals.resolve", {
				id: task.terminalId
			});
			if (!terminal) throw Errors.terminalNotFound(task.terminalId);
		}
		fields.task = JSON.stringify(sealJobTask(task, keyring, base ? (JSON.parse(base.task) as StoredTask) : undefined));
	}
	const startAt = parseTime("startAt", body.startAt);
	const endAt = parseTime("endAt", body.endAt);
	if (startAt !== undefined) fields.startAt = startAt;
	if (endAt !== undefined) fields.endAt = endAt;
	const start = fields.startAt !== undefined ? fields.startAt : (base?.startAt ?? null);
	const end = fields.endAt !== undefined ? fields.endAt : (base?.endAt ?? null);
	if (start !== null && end !== null && end <= start) throw invalid("endAt", "'endAt' must be after 'startAt'");
	return fields;
}

/** A new job's row from its checked body. @param defaultCatchUpWindow s */
export function newJobRow(
	body: JobBody,
	fields: Partial<JobRow>,
	createdBy: string | null,
	defaultCatchUpWindow: number,
	now: number
): JobRow {
	return {
		id: uuidv7(now),
		name: body.name,
		schedule: fields.schedule!,
		task: fields.task!,
		misfirePolicy: body.misfirePolicy ?? "skip",
		overlapPolicy: body.overlapPolicy ?? "allow",
		catchUpWindowMs: Math.round((body.catchUpWindow ?? defaultCatchUpWindow) * 1000),
		startAt: fields.startAt ?? null,
		endAt: fields.endAt ?? null,
		enabled: body.enabled ?? true,
		pausedAt: body.enabled === false ? now : null,
		resumedAt: null,
		createdBy,
		createdAt: now,
		updatedAt: now,
		version: 1
	};
}

/** The fields a PUT changes: those given, on top of the checked ones. */
export function jobChanges(body: Partial<JobBody>, row: JobRow, fields: Partial<JobRow>, now: number): Partial<JobRow> {
	const changes = { ...fields };
	if (body.name !== undefined) changes.name = body.name;
	if (body.misfirePolicy !== undefined) changes.misfirePolicy = body.misfirePolicy;
	if (body.overlapPolicy !== undefined) changes.overlapPolicy = body.overlapPolicy;
	if (body.catchUpWindow !== undefined) changes.catchUpWindowMs = Math.round(body.catchUpWindow * 1000);
	if (body.enabled !== undefined && body.enabled !== row.enabled) {
		changes.enabled = body.enabled;
		if (body.enabled) changes.resumedAt = now;
		else Object.assign(changes, { pausedAt: now, resumedAt: null });
	}
	changes.updatedAt = now;
	return changes;
}
