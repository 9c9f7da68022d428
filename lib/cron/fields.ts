/**
 * A cron expression as lookup tables, taken from the `cron` package's own parse of it through
 * its public API (`CronTime#toJSON`, `CronTime#getNextDateFrom`), so that the tables mean what
 * the package reads, and a fast search over wall-clock times (read as UTC) with them.
 *
 * `toJSON` gives each field as `*` or a list of values. Its `*` is lossy: the package writes
 * it when every value but the field's last is allowed too (seconds 0-58 read as `*`). Where it
 * says `*`, one question to the package's own search settles whether the last value is in.
 */
import { CronTime } from "cron";
import { DateTime } from "luxon";
import { DAY_MS } from "./dst.ts";

/** Which values each field allows; for seconds, minutes and hours the first allowed value at or after each (-1: none). */
export interface Fields {
	month: boolean[];
	dayOfMonth: boolean[];
	dayOfWeek: boolean[];
	/** A day field allowing every value does not restrict; with both restricting, either may match. */
	anyDayOfMonth: boolean;
	anyDayOfWeek: boolean;
	/** Every hour of the day matches: such an expression fires in both passes of a repeated hour. */
	everyHour: boolean;
	nextHour: Int8Array;
	nextMinute: Int8Array;
	nextSecond: Int8Array;
}

/** A parsed cron expression, kept per expression so that fire times cost no parsing. */
export interface Cron {
	time: CronTime;
	/** Null if the package's answer is not as expected: then its own (slow) search is used. */
	fields: Fields | null;
}

/** The package's field order, seconds first; `low`/`high` its range of values. */
const UNITS = [
	{ name: "second", low: 0, high: 59 },
	{ name: "minute", low: 0, high: 59 },
	{ name: "hour", low: 0, high: 23 },
	{ name: "dayOfMonth", low: 1, high: 31 },
	{ name: "month", low: 1, high: 12 },
	{ name: "dayOfWeek", low: 0, high: 6 }
] as const;

/**
 * For each field, an expression with only that field free, a moment just before the field's
 * last value (UTC, 2001: Jan 5 is a Friday), and that value's moment: whether the package's
 * search goes from the one to the other says whether the field allows its last value.
 */
const LAST_VALUE_PROBES: { expression: (field: string) => string; from: string; last: string }[] = [
	{ expression: f => `${f} 0 0 1 1 *`, from: "2001-01-01T00:00:58Z", last: "2001-01-01T00:00:59Z" },
	{ expression: f => `0 ${f} 0 1 1 *`, from: "2001-01-01T00:58:00Z", last: "2001-01-01T00:59:00Z" },
	{ expression: f => `0 0 ${f} 1 1 *`, from: "2001-01-01T22:00:00Z", last: "2001-01-01T23:00:00Z" },
	{ expression: f => `0 0 0 ${f} 1 *`, from: "2001-01-30T00:00:00Z", last: "2001-01-31T00:00:00Z" },
	{ expression: f => `0 0 0 1 ${f} *`, from: "2001-11-01T00:00:00Z", last: "2001-12-01T00:00:00Z" },
	{ expression: f => `0 0 0 * * ${f}`, from: "2001-01-05T00:00:00Z", last: "2001-01-06T00:00:00Z" }
];

function allowsLast(unit: number, field: string): boolean {
	const probe = LAST_VALUE_PROBES[unit];
	const next = new CronTime(probe.expression(field), "UTC").getNextDateFrom(
		DateTime.fromISO(probe.from, { zone: "utc" }),
		"UTC"
	);
	return next.toMillis() === Date.parse(probe.last);
}

/** The values of each field as the package parsed them, or null if its answer is not the shape expected. */
export function fieldValues(time: CronTime, source: string): number[][] | null {
	const json: unknown = time.toJSON();
	if (!Array.isArray(json) || json.length !== UNITS.length) return null;
	const texts = source.trim().split(/\s+/);
	// A 5-field expression has no seconds field: the package reads it as `0`, never `*`.
	const fieldText = (unit: number) => texts[unit - (UNITS.length - texts.length)] ?? "0";
	const all: number[][] = [];
	for (const [unit, { low, high }] of UNITS.entries()) {
		const text: unknown = json[unit];
		if (typeof text !== "string") return null;
		let values: number[];
		if (text === "*") {
			values = Array.from({ length: high - low }, (_, i) => low + i);
			if (allowsLast(unit, fieldText(unit))) values.push(high);
		} else {
			values = text.split(",").map(Number);
			if (!values.every(v => Number.isInteger(v) && v >= low && v <= high)) return null;
		}
		all.push(values);
	}
	return all;
}

function tablesOf(values: number[][]): Fields {
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
	const [second, minute, hour, dayOfMonth, month, dayOfWeek] = values;
	return {
		month: lookup(month, 13),
		dayOfMonth: lookup(dayOfMonth, 32),
		dayOfWeek: lookup(dayOfWeek, 7),
		anyDayOfMonth: dayOfMonth.length === 31,
		anyDayOfWeek: dayOfWeek.length === 7,
		everyHour: hour.length === 24,
		nextHour: nextOf(hour, 24),
		nextMinute: nextOf(minute, 60),
		nextSecond: nextOf(second, 60)
	};
}

const cronCache = new Map<string, Cron>();

/** The parsed expression, from a cache: the scheduler asks about the same few expressions again and again. */
export function cronOf(expression: string): Cron {
	let cron = cronCache.get(expression);
	if (!cron) {
		if (cronCache.size > 50_000) cronCache.clear();
		// Wall times only: the zone is applied by the caller (see dst.ts).
		const time = new CronTime(expression, "UTC");
		const values = fieldValues(time, expression);
		cron = { time, fields: values && tablesOf(values) };
		cronCache.set(expression, cron);
	}
	return cron;
}

/** The day matches as the package reads the two day fields: a restricting one must match, either if both restrict. */
function dayMatches(f: Fields, day: number, weekday: number): boolean {
	const byMonth = f.dayOfMonth[day];
	const byWeek = f.dayOfWeek[weekday];
	if (f.anyDayOfMonth) return f.anyDayOfWeek || byWeek;
	return byMonth || (!f.anyDayOfWeek && byWeek);
}

/**
 * The first matching wall-clock time strictly after `wall` (both ms, read as if in UTC): the
 * package's getNextDateFrom in UTC, which steps a second at a time through Luxon (hundreds of
 * µs a call), done with field lookups that skip whole months, days, hours and minutes.
 */
export function nextWall(cron: Cron, wall: number): number {
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
