/**
 * Schedules and their fire times, as pure functions of the schedule and a moment: no clock,
 * no timers. The scheduler asks "what is the first fire time after t?"; tests ask the same with
 * fixed dates.
 *
 * Cron expressions are parsed by the `cron` package (5 fields, or 6 with seconds first) and
 * evaluated in the schedule's time zone:
 * - a time that does not exist (the hour skipped when clocks go forward) fires at the first
 *   moment after the gap;
 * - a time that happens twice (the hour repeated when clocks go back) fires once, at its first
 *   occurrence, unless the expression itself names both (an hourly job fires in each hour).
 *
 * The package only matches wall-clock times here (it is always asked in UTC, which has no DST);
 * which instants those wall times are is worked out below, because its own DST handling makes
 * e.g. `0 3 * * *` fire twice on the day clocks go back, once at 02:00.
 */
import { CronTime } from "cron";
import { DateTime, FixedOffsetZone, IANAZone, type Zone } from "luxon";

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
function expandField(field: string, low: number, high: number): Set<number> {
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

/**
 * A cron expression's fields as lookup tables, taken from the `cron` package's own parse of it
 * (so that they mean what the package reads): which values each allows, and for seconds,
 * minutes and hours the first allowed value at or after each value (-1: none).
 */
interface Fields {
	month: boolean[];
	dayOfMonth: boolean[];
	dayOfWeek: boolean[];
	/** A day field allowing every value does not restrict; with both restricting, either may match. */
	anyDayOfMonth: boolean;
	anyDayOfWeek: boolean;
	nextHour: Int8Array;
	nextMinute: Int8Array;
	nextSecond: Int8Array;
}

/** A parsed cron expression, kept per expression so that fire times cost no parsing. */
interface Cron {
	time: CronTime;
	/** Null if the package's parse is not as expected: then its own (slow) search is used. */
	fields: Fields | null;
}

const cronCache = new Map<string, Cron>();

function cronOf(schedule: { cron: string; timezone?: string }): Cron {
	const key = `${schedule.timezone ?? ""}|${schedule.cron}`;
	let cron = cronCache.get(key);
	if (!cron) {
		if (cronCache.size > 50_000) cronCache.clear();
		const time = new CronTime(schedule.cron, schedule.timezone);
		cron = { time, fields: fieldsOf(time) };
		cronCache.set(key, cron);
	}
	return cron;
}

function fieldsOf(time: CronTime): Fields | null {
	const parsed = time as unknown as Record<string, unknown>;
	const values = (unit: string, low: number, high: number): number[] | null => {
		const field = parsed[unit];
		if (typeof field !== "object" || field === null) return null;
		const list = Object.keys(field).map(Number);
		return list.length > 0 && list.every(v => Number.isInteger(v) && v >= low && v <= high) ? list : null;
	};
	const lookup = (list: number[], size: number) => {
		const allowed = new Array<boolean>(size).fill(false);
		for (const v of list) allowed[v] = true;
		return allowed;
	};
	const nextOf = (list: number[], size: number) => {
		const allowed = lookup(list, size);
		const next = new Int8Array(size).fill(-1);
		for (let v = size - 1; v >= 0; v--) next[v] = allowed[v] ? v : v + 1 < size ? next[v + 1] : -1;
		return next;
	};
	const [second, minute, hour, dayOfMonth, month, dayOfWeek] = [
		values("second", 0, 59),
		values("minute", 0, 59),
		values("hour", 0, 23),
		values("dayOfMonth", 1, 31),
		values("month", 1, 12),
		values("dayOfWeek", 0, 6)
	];
	if (!second || !minute || !hour || !dayOfMonth || !month || !dayOfWeek) return null;
	return {
		month: lookup(month, 13),
		dayOfMonth: lookup(dayOfMonth, 32),
		dayOfWeek: lookup(dayOfWeek, 7),
		anyDayOfMonth: dayOfMonth.length === 31,
		anyDayOfWeek: dayOfWeek.length === 7,
		nextHour: nextOf(hour, 24),
		nextMinute: nextOf(minute, 60),
		nextSecond: nextOf(second, 60)
	};
}

/** The day matches as the package reads the two day fields: a restricting one must match, either if both restrict. */
function dayMatches(f: Fields, day: number, weekday: number): boolean {
	const byMonth = f.dayOfMonth[day];
	const byWeek = f.dayOfWeek[weekday];
	if (f.anyDayOfMonth) return f.anyDayOfWeek || byWeek;
	return byMonth || (!f.anyDayOfWeek && byWeek);
}

const DAY_MS = 86_400_000;

/** Offset of the zone from UTC at instant t, ms. */
function offsetAt(zone: Zone, t: number): number {
	return Math.round(zone.offset(t) * 60_000);
}

/** The first instant in (lo, hi] with hi's offset: when the clocks changed (once) in between. */
function changeBetween(zone: Zone, lo: number, hi: number): number {
	const offset = offsetAt(zone, hi);
	while (hi - lo > 1) {
		const mid = Math.floor((lo + hi) / 2);
		if (offsetAt(zone, mid) === offset) hi = mid;
		else lo = mid;
	}
	return hi;
}

/**
 * The first matching wall-clock time strictly after `wall` (both ms, read as if in UTC): the
 * package's getNextDateFrom in UTC, which steps a second at a time through Luxon (hundreds of
 * µs a call), done with field lookups that skip whole months, days, hours and minutes.
 */
function nextWall(cron: Cron, wall: number): number {
	const f = cron.fields;
	if (!f) return cron.time.getNextDateFrom(DateTime.fromMillis(wall, { zone: "utc" }), "UTC").toMillis();
	let t = (Math.floor(wall / 1000) + 1) * 1000;
	const limit = t + 8 * 366 * DAY_MS;
	while (t <= limit) {
		const d = new Date(t);
		const year = d.getUTCFullYear();
		const month = d.getUTCMonth();
		const day = d.getUTCDate();
		if (!f.month[month + 1]) {
			t = Date.UTC(year, month + 1, 1);
			continue;
		}
		if (!dayMatches(f, day, d.getUTCDay())) {
			t = Date.UTC(year, month, day + 1);
			continue;
		}
		const hour = d.getUTCHours();
		const h = f.nextHour[hour];
		if (h !== hour) {
			t = h < 0 ? Date.UTC(year, month, day + 1) : Date.UTC(year, month, day, h);
			continue;
		}
		const minute = d.getUTCMinutes();
		const m = f.nextMinute[minute];
		if (m !== minute) {
			t = m < 0 ? Date.UTC(year, month, day, hour + 1) : Date.UTC(year, month, day, hour, m);
			continue;
		}
		const second = d.getUTCSeconds();
		const s = f.nextSecond[second];
		if (s !== second) {
			t = s < 0 ? Date.UTC(year, month, day, hour, minute + 1) : t + (s - second) * 1000;
			continue;
		}
		return t;
	}
	throw new Error(`No time matches the cron expression '${String(cron.time.source)}' within 8 years`);
}

/** The first instant showing wall time `wall` in the zone; in a gap (clocks went forward), the end of the gap. */
function firstInstantOf(zone: Zone, wall: number): number {
	const before = offsetAt(zone, wall - DAY_MS);
	const after = offsetAt(zone, wall + DAY_MS);
	const instants = [before, after].map(o => wall - o).filter(t => wall - t === offsetAt(zone, t));
	if (instants.length > 0) return Math.min(...instants);
	return changeBetween(zone, wall - after, wall - before);
}

/** The hour the clocks go back over, [start, end), that t is in or that begins within a day after t. */
function repeatNear(zone: Zone, t: number): { start: number; end: number; offset: number } | null {
	const now = offsetAt(zone, t);
	const earlier = offsetAt(zone, t - DAY_MS);
	if (earlier > now) {
		const start = changeBetween(zone, t - DAY_MS, t);
		if (t < start + earlier - now) return { start, end: start + earlier - now, offset: now };
	}
	const later = offsetAt(zone, t + DAY_MS);
	if (later < now) {
		const start = changeBetween(zone, t, t + DAY_MS);
		return { start, end: start + now - later, offset: later };
	}
	return null;
}

function nextCronTime(schedule: { cron: string; timezone?: string }, from: number): number {
	const cron = cronOf(schedule);
	const zone: Zone = schedule.timezone ? IANAZone.create(schedule.timezone) : FixedOffsetZone.utcInstance;
	const repeat = repeatNear(zone, from);
	const inRepeat = repeat !== null && from >= repeat.start;
	// First occurrences: wall times after from's, or after the whole repeated hour when from is in its second pass.
	const wall = inRepeat ? repeat.start - 1 + offsetAt(zone, repeat.start - 1) : from + offsetAt(zone, from);
	let next = firstInstantOf(zone, nextWall(cron, wall));
	// Second occurrences, for expressions that fire every hour.
	if (repeat !== null && expandField(schedule.cron.trim().split(/\s+/).at(-4)!, 0, 23).size === 24) {
		const second = nextWall(cron, Math.max(from, repeat.start - 1) + repeat.offset) - repeat.offset;
		if (second < repeat.end && second < next) next = second;
	}
	return next;
}

/**
 * The first fire time strictly after `after` (ms), within startAt/endAt; null when there is
 * none. `delayAfterFinish` has no calendar: its fire time follows the previous run's end, so
 * here it is `after + delay` only when `after` is that end (callers pass it so).
 */
export function nextFireTime(schedule: Schedule, after: number, bounds: Bounds): number | null {
	const from = bounds.startAt != null ? Math.max(after, bounds.startAt - 1) : after;
	let next: number | null;
	if ("cron" in schedule) {
		next = nextCronTime(schedule, from);
	} else if ("every" in schedule) {
		const anchor = bounds.startAt ?? bounds.anchor;
		const k = from < anchor ? 0 : Math.floor((from - anchor) / schedule.every) + 1;
		next = anchor + k * schedule.every;
	} else if ("at" in schedule) {
		const at = DateTime.fromISO(schedule.at).toMillis();
		next = at > from ? at : null;
	} else {
		next = after + schedule.delayAfterFinish;
		if (bounds.startAt != null && next < bounds.startAt) next = bounds.startAt;
	}
	if (next === null || (bounds.endAt != null && next > bounds.endAt)) return null;
	return next;
}

/** Up to `count` fire times after `after`, in order. */
export function nextFireTimes(schedule: Schedule, after: number, bounds: Bounds, count: number): number[] {
	const times: number[] = [];
	let t = after;
	while (times.length < count) {
		const next = nextFireTime(schedule, t, bounds);
		if (next === null) break;
		times.push(next);
		if ("delayAfterFinish" in schedule) break; // later ones depend on when each run ends
		t = next;
	}
	return times;
}

/** Fire times in (from, to], at most `limit` of them (the newest if there are more). */
export function fireTimesBetween(
	schedule: Schedule,
	from: number,
	to: number,
	bounds: Bounds,
	limit: number
): { times: number[]; more: number } {
	if ("delayAfterFinish" in schedule) return { times: [], more: 0 };
	const end = bounds.endAt != null ? Math.min(to, bounds.endAt) : to;
	const times: number[] = [];
	let more = 0;
	let t = from;
	for (;;) {
		const next = nextFireTime(schedule, t, bounds);
		if (next === null || next > to) break;
		times.push(next);
		if (times.length > limit) {
			times.shift();
			more++;
		}
		t = next;
		// Fixed rate over a long gap: count the rest without walking them one by one.
		if ("every" in schedule && more > 0) {
			const remaining = Math.floor((end - t) / schedule.every);
			if (remaining > limit) {
				more += remaining - limit;
				t += (remaining - limit) * schedule.every;
			}
		}
	}
	return { times, more };
}
