/**
 * Checking a schedule a user gave: which kind it is, and for cron whether the `cron` package
 * reads the expression and whether it can ever fire. Messages name the field.
 */
import { CronTime } from "cron";
import { DateTime, IANAZone } from "luxon";
import { MIN_INTERVAL_MS, ScheduleError, type Schedule } from "./types.ts";

/** Checks a schedule and returns it in normal form; throws ScheduleError naming the field. */
export function parseSchedule(input: unknown): Schedule {
	if (typeof input !== "object" || input === null || Array.isArray(input))
		throw new ScheduleError("schedule", "'schedule' must be an object with one of cron, every, delayAfterFinish or at");
	const keys = Object.keys(input).filter(k => ["cron", "every", "delayAfterFinish", "at"].includes(k));
	if (keys.length !== 1)
		throw new ScheduleError("schedule", "'schedule' must have exactly one of cron, every, delayAfterFinish or at");
	const s = input as Record<string, unknown>;
	const unknown = Object.keys(s).filter(k => ![...keys, "timezone"].includes(k));
	if (unknown.length > 0) throw new ScheduleError(`schedule.${unknown[0]}`, `Unknown field 'schedule.${unknown[0]}'`);
	if ("timezone" in s && keys[0] !== "cron")
		throw new ScheduleError("schedule.timezone", "'schedule.timezone' applies to cron schedules only");

	switch (keys[0]) {
		case "cron": {
			if (typeof s.cron !== "string" || s.cron.trim() === "")
				throw new ScheduleError("schedule.cron", "'schedule.cron' must be a non-empty string");
			const timezone = s.timezone;
			if (timezone !== undefined && (typeof timezone !== "string" || !IANAZone.isValidZone(timezone)))
				throw new ScheduleError(
					"schedule.timezone",
					`'schedule.timezone' ${JSON.stringify(timezone)} is not a known IANA time zone`
				);
			const fields = s.cron.trim().split(/\s+/);
			if (fields.length < 5 || fields.length > 6)
				throw new ScheduleError(
					"schedule.cron",
					`'schedule.cron' needs 5 fields (minute hour day month weekday) or 6 (seconds first); '${s.cron}' has ${fields.length}`
				);
			try {
				new CronTime(s.cron.trim(), timezone as string | undefined);
			} catch (err) {
				throw new ScheduleError("schedule.cron", `'schedule.cron' '${s.cron}' is invalid: ${(err as Error).message}`);
			}
			if (neverFires(fields))
				throw new ScheduleError(
					"schedule.cron",
					`'schedule.cron' '${s.cron}' never fires: no month has that day of the month`
				);
			return timezone ? { cron: s.cron.trim(), timezone: timezone as string } : { cron: s.cron.trim() };
		}
		case "every":
		case "delayAfterFinish": {
			const ms = s[keys[0]];
			if (typeof ms !== "number" || !Number.isInteger(ms) || ms < MIN_INTERVAL_MS)
				throw new ScheduleError(
					`schedule.${keys[0]}`,
					`'schedule.${keys[0]}' must be a whole number of milliseconds, at least ${MIN_INTERVAL_MS}`
				);
			return keys[0] === "every" ? { every: ms } : { delayAfterFinish: ms };
		}
		default: {
			// Without an offset in the string it is UTC, not the server's local time.
			const at = typeof s.at === "string" ? DateTime.fromISO(s.at, { setZone: true, zone: "utc" }) : null;
			if (!at?.isValid)
				throw new ScheduleError(
					"schedule.at",
					`'schedule.at' must be an ISO-8601 date-time; got ${JSON.stringify(s.at)}`
				);
			return { at: at.toISO()! };
		}
	}
}

/** The values a (validated) cron field stands for, as the `cron` package reads it. */
export function expandField(field: string, low: number, high: number): Set<number> {
	const values = new Set<number>();
	const aliases = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
	const months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
	const text = field
		.toLowerCase()
		.replace(/[a-z]{1,3}/g, a => String(months.includes(a) ? months.indexOf(a) + 1 : aliases.indexOf(a)))
		.replace(/\*/g, `${low}-${high}`);
	for (const part of text.split(",")) {
		const [, lower, upper, step] = /^(\d+)(?:-(\d+))?(?:\/(\d+))?$/.exec(part) ?? [];
		const from = Number(lower);
		const to = upper !== undefined ? Number(upper) : step !== undefined ? high : from;
		for (let v = from; v <= to; v += Number(step ?? 1)) values.add(v);
	}
	return values;
}

/** True when no date matches the day-of-month and month fields (say `0 0 30 2 *`). */
function neverFires(fields: string[]): boolean {
	const [dayOfMonth, month, dayOfWeek] = fields.slice(-3);
	const weekdays = expandField(dayOfWeek, 0, 7);
	if (weekdays.has(7)) weekdays.add(0);
	weekdays.delete(7);
	if (weekdays.size !== 7) return false; // either day field may match: every weekday comes every month
	const longest = Math.max(...[...expandField(month, 1, 12)].map(m => [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1]));
	return Math.min(...expandField(dayOfMonth, 1, 31)) > longest;
}
