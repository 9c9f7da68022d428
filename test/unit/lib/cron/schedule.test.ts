import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { CronTime } from "cron";
import { DateTime, IANAZone } from "luxon";
import {
	fireTimesBetween,
	MIN_INTERVAL_MS,
	nextFireTime,
	nextFireTimes,
	parseSchedule,
	ScheduleError,
	type Bounds,
	type Schedule
} from "../../../../lib/cron/index.ts";

// Fixed dates only: nothing here reads the clock.
const ms = (iso: string): number => {
	const t = Date.parse(iso);
	assert.ok(!Number.isNaN(t), iso);
	return t;
};
const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const ANCHOR = ms("2026-01-01T00:00:00Z");
const NO_BOUNDS: Bounds = { anchor: ANCHOR };

/** Fire times as ISO strings (UTC), so failures read as dates. */
function fires(schedule: unknown, after: string, count: number, bounds: Bounds = NO_BOUNDS): (string | null)[] {
	return nextFireTimes(parseSchedule(schedule), ms(after), bounds, count).map(iso);
}
function fire(schedule: unknown, after: string, bounds: Bounds = NO_BOUNDS): string | null {
	return iso(nextFireTime(parseSchedule(schedule), ms(after), bounds));
}
/** Fire times in (from, to], all of them. */
function between(schedule: unknown, from: string, to: string, bounds: Bounds = NO_BOUNDS): (string | null)[] {
	const { times, more } = fireTimesBetween(parseSchedule(schedule), ms(from), ms(to), bounds, 10_000);
	assert.equal(more, 0);
	return times.map(iso);
}

describe("schedule: cron", () => {
	it("6 fields (seconds first): */5 steps 5 s at a time, aligned to :00/:05", () => {
		const times = nextFireTimes(parseSchedule({ cron: "*/5 * * * * *" }), ms("2026-01-01T00:00:02.345Z"), NO_BOUNDS, 12);
		assert.equal(iso(times[0]), "2026-01-01T00:00:05.000Z");
		assert.equal(iso(times[11]), "2026-01-01T00:01:00.000Z");
		for (let i = 0; i < times.length; i++) {
			assert.equal(times[i] % (5 * SECOND), 0, "aligned to a multiple of 5 s");
			if (i > 0) assert.equal(times[i] - times[i - 1], 5 * SECOND);
		}
		// strictly after: from a fire time itself, the next one
		assert.equal(fire({ cron: "*/5 * * * * *" }, "2026-01-01T00:00:05.000Z"), "2026-01-01T00:00:10.000Z");
		assert.equal(fire({ cron: "*/5 * * * * *" }, "2026-01-01T00:00:04.999Z"), "2026-01-01T00:00:05.000Z");
	});

	it("5 fields fire on second 0", () => {
		assert.deepEqual(fires({ cron: "* * * * *" }, "2026-01-01T10:00:30.500Z", 2), [
			"2026-01-01T10:01:00.000Z",
			"2026-01-01T10:02:00.000Z"
		]);
		assert.deepEqual(fires({ cron: "15 10 * * *" }, "2026-01-01T10:15:00.000Z", 1), ["2026-01-02T10:15:00.000Z"]);
	});

	it("0 9 * * 1-5 skips the weekend", () => {
		// 2026-01-02 is a Friday
		assert.deepEqual(fires({ cron: "0 9 * * 1-5" }, "2026-01-02T10:00:00Z", 6), [
			"2026-01-05T09:00:00.000Z",
			"2026-01-06T09:00:00.000Z",
			"2026-01-07T09:00:00.000Z",
			"2026-01-08T09:00:00.000Z",
			"2026-01-09T09:00:00.000Z",
			"2026-01-12T09:00:00.000Z"
		]);
		assert.deepEqual(fires({ cron: "0 9 * * mon-fri" }, "2026-01-02T10:00:00Z", 1), ["2026-01-05T09:00:00.000Z"]);
	});

	it("the 31st only comes in months that have one", () => {
		assert.deepEqual(fires({ cron: "0 0 31 * *" }, "2026-01-31T00:00:00Z", 6), [
			"2026-03-31T00:00:00.000Z",
			"2026-05-31T00:00:00.000Z",
			"2026-07-31T00:00:00.000Z",
			"2026-08-31T00:00:00.000Z",
			"2026-10-31T00:00:00.000Z",
			"2026-12-31T00:00:00.000Z"
		]);
	});

	it("Feb 29 waits for a leap year (2028)", () => {
		assert.deepEqual(fires({ cron: "0 12 29 2 *" }, "2026-03-01T00:00:00Z", 2), [
			"2028-02-29T12:00:00.000Z",
			"2032-02-29T12:00:00.000Z"
		]);
		// and the last day of February 2028 is the 29th
		assert.deepEqual(fires({ cron: "0 0 28-31 2 *" }, "2028-02-27T12:00:00Z", 3), [
			"2028-02-28T00:00:00.000Z",
			"2028-02-29T00:00:00.000Z",
			"2029-02-28T00:00:00.000Z"
		]);
	});

	it("day of month and day of week together match either (the cron package's reading)", () => {
		// the 13th, or any Friday: 2026-02-06 and 2026-02-13 are Fridays, 2026-03-13 too
		assert.deepEqual(fires({ cron: "0 0 13 * 5" }, "2026-02-01T00:00:00Z", 4), [
			"2026-02-06T00:00:00.000Z",
			"2026-02-13T00:00:00.000Z",
			"2026-02-20T00:00:00.000Z",
			"2026-02-27T00:00:00.000Z"
		]);
		// so April 31 never comes, but Mondays in April do
		assert.equal(fire({ cron: "0 0 31 4 1" }, "2026-01-01T00:00:00Z"), "2026-04-06T00:00:00.000Z");
	});
});

describe("schedule: cron in time zones", () => {
	it("0 9 * * * is 09:00 local: New York (UTC-5 in winter, -4 in summer) and Tokyo (UTC+9)", () => {
		const after = "2026-01-14T12:00:00Z";
		assert.equal(fire({ cron: "0 9 * * *", timezone: "America/New_York" }, after), "2026-01-14T14:00:00.000Z");
		assert.equal(fire({ cron: "0 9 * * *", timezone: "Asia/Tokyo" }, after), "2026-01-15T00:00:00.000Z");
		assert.equal(fire({ cron: "0 9 * * *" }, after), "2026-01-15T09:00:00.000Z", "no time zone is UTC");
		assert.equal(
			fire({ cron: "0 9 * * *", timezone: "America/New_York" }, "2026-07-14T12:00:00Z"),
			"2026-07-14T13:00:00.000Z"
		);
		assert.equal(fire({ cron: "0 9 * * *", timezone: "Asia/Tokyo" }, "2026-07-14T12:00:00Z"), "2026-07-15T00:00:00.000Z");
	});

	it("Berlin, clocks forward 2026-03-29 02:00→03:00: a time in the gap fires at 03:00+02:00, once", () => {
		// Observed: 02:30 does not exist that day; the fire comes at the first moment after the
		// gap, 03:00+02:00 = 01:00Z, and the day after it is back to 02:30+02:00 = 00:30Z.
		assert.deepEqual(fires({ cron: "30 2 * * *", timezone: "Europe/Berlin" }, "2026-03-27T12:00:00Z", 3), [
			"2026-03-28T01:30:00.000Z", // 02:30+01:00
			"2026-03-29T01:00:00.000Z", // 03:00+02:00, the end of the gap
			"2026-03-30T00:30:00.000Z" // 02:30+02:00
		]);
		// Every time inside the gap collapses onto that one moment.
		assert.deepEqual(
			between({ cron: "*/15 2 * * *", timezone: "Europe/Berlin" }, "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"),
			["2026-03-29T01:00:00.000Z"]
		);
		// An hourly job fires at 01:00+01:00 and then 03:00+02:00: the day has 23 hours and 23 fires.
		assert.deepEqual(fires({ cron: "0 * * * *", timezone: "Europe/Berlin" }, "2026-03-28T23:30:00Z", 3), [
			"2026-03-29T00:00:00.000Z",
			"2026-03-29T01:00:00.000Z",
			"2026-03-29T02:00:00.000Z"
		]);
		assert.equal(
			between({ cron: "0 * * * *", timezone: "Europe/Berlin" }, "2026-03-28T22:59:59Z", "2026-03-29T21:59:59Z").length,
			23
		);
	});

	it("Berlin, clocks back 2026-10-25 03:00→02:00: a daily 02:30 fires once, an hourly job in both 02:00s", () => {
		// The local day runs from 2026-10-24T22:00Z to 2026-10-25T23:00Z (25 hours).
		const dayStart = "2026-10-24T21:59:59Z";
		const dayEnd = "2026-10-25T22:59:59Z";
		assert.deepEqual(between({ cron: "30 2 * * *", timezone: "Europe/Berlin" }, dayStart, dayEnd), [
			"2026-10-25T00:30:00.000Z" // 02:30+02:00, the first of the two
		]);
		const hourly = between({ cron: "0 * * * *", timezone: "Europe/Berlin" }, dayStart, dayEnd);
		assert.equal(hourly.length, 25);
		assert.ok(hourly.includes("2026-10-25T00:00:00.000Z"), "02:00+02:00");
		assert.ok(hourly.includes("2026-10-25T01:00:00.000Z"), "02:00+01:00");
		assert.deepEqual(fires({ cron: "0 * * * *", timezone: "Europe/Berlin" }, "2026-10-24T23:30:00Z", 3), [
			"2026-10-25T00:00:00.000Z",
			"2026-10-25T01:00:00.000Z",
			"2026-10-25T02:00:00.000Z"
		]);
		// ...including from inside the repeated hour (its first pass and its second)
		assert.equal(fire({ cron: "0 * * * *", timezone: "Europe/Berlin" }, "2026-10-25T00:30:00Z"), "2026-10-25T01:00:00.000Z");
		assert.equal(fire({ cron: "0 * * * *", timezone: "Europe/Berlin" }, "2026-10-25T01:00:00Z"), "2026-10-25T02:00:00.000Z");
		// A time right after the repeated hour fires once, at 03:00+01:00 (the cron package on its
		// own fired `0 3 * * *` at 02:00+01:00 as well).
		assert.deepEqual(between({ cron: "0 3 * * *", timezone: "Europe/Berlin" }, dayStart, dayEnd), [
			"2026-10-25T02:00:00.000Z"
		]);
		// From within the second pass, a daily 02:30 waits for the next day.
		assert.equal(fire({ cron: "30 2 * * *", timezone: "Europe/Berlin" }, "2026-10-25T01:10:00Z"), "2026-10-26T01:30:00.000Z");
	});

	it("New York 2026-03-08 (02:00→03:00) and 2026-11-01 (02:00→01:00)", () => {
		const ny = (cron: string) => ({ cron, timezone: "America/New_York" });
		// forward: 02:30 EST does not exist; fires at 03:00 EDT = 07:00Z
		assert.deepEqual(fires(ny("30 2 * * *"), "2026-03-07T12:00:00Z", 2), [
			"2026-03-08T07:00:00.000Z",
			"2026-03-09T06:30:00.000Z"
		]);
		assert.deepEqual(fires(ny("0 * * * *"), "2026-03-08T05:30:00Z", 3), [
			"2026-03-08T06:00:00.000Z", // 01:00 EST
			"2026-03-08T07:00:00.000Z", // 03:00 EDT
			"2026-03-08T08:00:00.000Z"
		]);
		// back: 01:00-02:00 happens twice (EDT, then EST); the local day is 05:00Z..05:00Z+25h
		const dayStart = "2026-11-01T03:59:59Z";
		const dayEnd = "2026-11-02T04:59:59Z";
		assert.deepEqual(between(ny("30 1 * * *"), dayStart, dayEnd), ["2026-11-01T05:30:00.000Z"]);
		assert.deepEqual(between(ny("0 2 * * *"), dayStart, dayEnd), ["2026-11-01T07:00:00.000Z"]);
		const hourly = between(ny("0 * * * *"), dayStart, dayEnd);
		assert.equal(hourly.length, 25);
		assert.deepEqual(hourly.slice(0, 4), [
			"2026-11-01T04:00:00.000Z", // 00:00 EDT
			"2026-11-01T05:00:00.000Z", // 01:00 EDT
			"2026-11-01T06:00:00.000Z", // 01:00 EST
			"2026-11-01T07:00:00.000Z" // 02:00 EST
		]);
	});

	it("the gap rule holds where the clocks go forward at night's end too (Sydney, 2026-10-04 02:00→03:00)", () => {
		assert.equal(
			fire({ cron: "30 2 * * *", timezone: "Australia/Sydney" }, "2026-10-03T00:00:00Z"),
			"2026-10-03T16:00:00.000Z"
		);
	});
});

describe("schedule: every", () => {
	it("counts from bounds.anchor: anchor + k*every, strictly after `after`", () => {
		const every = parseSchedule({ every: 1000 });
		assert.equal(nextFireTime(every, ANCHOR + 2500, NO_BOUNDS), ANCHOR + 3000);
		assert.equal(nextFireTime(every, ANCHOR + 3000, NO_BOUNDS), ANCHOR + 4000);
		assert.equal(nextFireTime(every, ANCHOR, NO_BOUNDS), ANCHOR + 1000);
		assert.equal(nextFireTime(every, ANCHOR - 10_000, NO_BOUNDS), ANCHOR, "before the anchor: the anchor itself");
	});

	it("counts from startAt when there is one", () => {
		const every = parseSchedule({ every: 60_000 });
		const startAt = ANCHOR + 12_345;
		const bounds = { anchor: ANCHOR, startAt };
		assert.equal(nextFireTime(every, ANCHOR, bounds), startAt);
		assert.equal(nextFireTime(every, startAt - 1, bounds), startAt);
		assert.equal(nextFireTime(every, startAt, bounds), startAt + 60_000);
		assert.equal(nextFireTime(every, startAt + 90_000, bounds), startAt + 120_000);
	});

	it("property: the first time on the grid strictly after `after`", () => {
		fc.assert(
			fc.property(
				fc.integer({ min: ms("2020-01-01T00:00:00Z"), max: ms("2030-01-01T00:00:00Z") }),
				fc.integer({ min: MIN_INTERVAL_MS, max: 10 * DAY }),
				fc.integer({ min: -100 * DAY, max: 1000 * DAY }),
				fc.option(fc.integer({ min: -10 * DAY, max: 10 * DAY })),
				(anchor, every, delta, startDelta) => {
					const startAt = startDelta === null ? undefined : anchor + startDelta;
					const grid = startAt ?? anchor;
					const after = anchor + delta;
					const next = nextFireTime({ every }, after, { anchor, startAt })!;
					assert.ok(next > after, "after `after`");
					assert.equal((next - grid) % every, 0, "on the grid");
					assert.ok(next >= grid, "not before the grid starts");
					assert.ok(next - every <= after || next - every < grid, "the first such");
				}
			),
			{ numRuns: 500 }
		);
	});
});

describe("schedule: at", () => {
	it("fires once at its instant when that is still ahead, never when it has passed", () => {
		const at = parseSchedule({ at: "2026-06-01T12:00:00Z" });
		assert.equal(iso(nextFireTime(at, ms("2026-01-01T00:00:00Z"), NO_BOUNDS)), "2026-06-01T12:00:00.000Z");
		assert.equal(nextFireTime(at, ms("2026-06-01T12:00:00Z"), NO_BOUNDS), null, "strictly after");
		assert.equal(nextFireTime(at, ms("2026-07-01T00:00:00Z"), NO_BOUNDS), null);
		assert.deepEqual(nextFireTimes(at, ms("2026-01-01T00:00:00Z"), NO_BOUNDS, 5).map(iso), ["2026-06-01T12:00:00.000Z"]);
	});

	it("honours an offset in the string, and reads a string without one as UTC", () => {
		assert.equal(fire({ at: "2026-06-01T12:00:00+02:00" }, "2026-01-01T00:00:00Z"), "2026-06-01T10:00:00.000Z");
		assert.equal(fire({ at: "2026-06-01T12:00:00-05:30" }, "2026-01-01T00:00:00Z"), "2026-06-01T17:30:00.000Z");
		assert.equal(fire({ at: "2026-06-01T12:00:00" }, "2026-01-01T00:00:00Z"), "2026-06-01T12:00:00.000Z");
	});
});

describe("schedule: delayAfterFinish", () => {
	it("is `after` (the previous run's end) plus the delay, one at a time", () => {
		const delay = parseSchedule({ delayAfterFinish: 30_000 });
		const end = ms("2026-03-01T10:00:00.250Z");
		assert.equal(nextFireTime(delay, end, NO_BOUNDS), end + 30_000);
		assert.deepEqual(nextFireTimes(delay, end, NO_BOUNDS, 5), [end + 30_000]);
		assert.deepEqual(fireTimesBetween(delay, end, end + DAY, NO_BOUNDS, 10), { times: [], more: 0 });
	});

	it("waits for startAt and stops at endAt", () => {
		const delay = parseSchedule({ delayAfterFinish: 1000 });
		const end = ms("2026-03-01T10:00:00Z");
		assert.equal(nextFireTime(delay, end, { anchor: ANCHOR, startAt: end + HOUR }), end + HOUR);
		assert.equal(nextFireTime(delay, end, { anchor: ANCHOR, endAt: end + 999 }), null);
		assert.equal(nextFireTime(delay, end, { anchor: ANCHOR, endAt: end + 1000 }), end + 1000);
	});
});

describe("schedule: startAt and endAt", () => {
	const hourly = parseSchedule({ cron: "0 * * * *" });
	const t0 = ms("2026-01-01T00:00:00Z");

	it("nothing before startAt; a fire time at startAt counts", () => {
		assert.equal(iso(nextFireTime(hourly, t0, { anchor: t0, startAt: t0 + 5.5 * HOUR })), "2026-01-01T06:00:00.000Z");
		assert.equal(iso(nextFireTime(hourly, t0, { anchor: t0, startAt: t0 + 6 * HOUR })), "2026-01-01T06:00:00.000Z");
		assert.equal(
			iso(nextFireTime(parseSchedule({ at: "2026-01-01T03:00:00Z" }), t0, { anchor: t0, startAt: t0 + 6 * HOUR })),
			null,
			"a one-shot before startAt never fires"
		);
		const { times, more } = fireTimesBetween(hourly, t0, t0 + 10 * HOUR, { anchor: t0, startAt: t0 + 7 * HOUR }, 100);
		assert.deepEqual(times.map(iso), [
			"2026-01-01T07:00:00.000Z",
			"2026-01-01T08:00:00.000Z",
			"2026-01-01T09:00:00.000Z",
			"2026-01-01T10:00:00.000Z"
		]);
		assert.equal(more, 0);
	});

	it("nothing after endAt (null); a fire time at endAt counts", () => {
		const bounds = { anchor: t0, endAt: t0 + 3 * HOUR };
		assert.deepEqual(nextFireTimes(hourly, t0, bounds, 10).map(iso), [
			"2026-01-01T01:00:00.000Z",
			"2026-01-01T02:00:00.000Z",
			"2026-01-01T03:00:00.000Z"
		]);
		assert.equal(nextFireTime(hourly, t0 + 3 * HOUR, bounds), null);
		assert.equal(nextFireTime({ every: 1000 }, t0 + 3 * HOUR, { anchor: t0, endAt: t0 + 3 * HOUR }), null);
		assert.equal(nextFireTime({ at: "2026-01-01T04:00:00.000Z" }, t0, bounds), null);
	});
});

describe("schedule: nextFireTimes", () => {
	it("returns `count` increasing times for cron and every", () => {
		const t0 = ms("2026-05-05T05:05:05.005Z");
		for (const schedule of [
			parseSchedule({ cron: "*/7 * * * *", timezone: "Europe/Berlin" }),
			parseSchedule({ every: 1500 })
		]) {
			const times = nextFireTimes(schedule, t0, { anchor: ANCHOR }, 5);
			assert.equal(times.length, 5);
			assert.ok(times[0] > t0);
			for (let i = 1; i < times.length; i++) assert.ok(times[i] > times[i - 1]);
		}
		assert.deepEqual(
			nextFireTimes({ every: 1500 }, ANCHOR, NO_BOUNDS, 5),
			[1, 2, 3, 4, 5].map(k => ANCHOR + k * 1500)
		);
		assert.deepEqual(nextFireTimes({ every: 1500 }, ANCHOR, NO_BOUNDS, 0), []);
	});
});

describe("schedule: fireTimesBetween", () => {
	const t0 = ms("2026-01-01T00:00:00Z");

	it("counts the fires missed over a gap, in (from, to]", () => {
		const hourly = parseSchedule({ cron: "0 * * * *" });
		const { times, more } = fireTimesBetween(hourly, t0, t0 + 10 * HOUR, NO_BOUNDS, 100);
		assert.equal(times.length, 10);
		assert.equal(iso(times[0]), "2026-01-01T01:00:00.000Z", "not the one at `from`");
		assert.equal(iso(times[9]), "2026-01-01T10:00:00.000Z", "the one at `to`");
		assert.equal(more, 0);
		assert.deepEqual(fireTimesBetween(hourly, t0, t0 + 30 * MINUTE, NO_BOUNDS, 100), { times: [], more: 0 });
	});

	it("keeps the newest `limit` and counts the rest in `more`", () => {
		const hourly = parseSchedule({ cron: "0 * * * *" });
		const { times, more } = fireTimesBetween(hourly, t0, t0 + 10 * HOUR, NO_BOUNDS, 3);
		assert.deepEqual(times.map(iso), ["2026-01-01T08:00:00.000Z", "2026-01-01T09:00:00.000Z", "2026-01-01T10:00:00.000Z"]);
		assert.equal(more, 7);
		assert.deepEqual(fireTimesBetween(hourly, t0, t0 + 10 * HOUR, NO_BOUNDS, 0), { times: [], more: 10 });
		assert.deepEqual(fireTimesBetween({ at: "2026-01-01T05:00:00Z" }, t0, t0 + 10 * HOUR, NO_BOUNDS, 3), {
			times: [t0 + 5 * HOUR],
			more: 0
		});
	});

	it("every 100 ms over 30 days: the newest few and an exact count, without walking them all", () => {
		const total = (30 * DAY) / 100; // 25,920,000 fires
		const { times, more } = fireTimesBetween({ every: 100 }, t0, t0 + 30 * DAY, { anchor: t0 }, 5);
		assert.deepEqual(
			times,
			[4, 3, 2, 1, 0].map(k => t0 + 30 * DAY - k * 100)
		);
		assert.equal(more, total - 5);
		// with the anchor off the gap's edges
		const odd = fireTimesBetween({ every: 100 }, t0 + 50, t0 + 30 * DAY + 50, { anchor: t0 + 7 }, 5);
		assert.deepEqual(
			odd.times,
			[4, 3, 2, 1, 0].map(k => t0 + 30 * DAY + 7 - k * 100)
		);
		assert.equal(odd.more + odd.times.length, total);
	});

	it("every over a long gap stops at endAt", () => {
		const endAt = t0 + DAY + 30;
		const { times, more } = fireTimesBetween({ every: 100 }, t0, t0 + 30 * DAY, { anchor: t0, endAt }, 5);
		assert.deepEqual(
			times,
			[4, 3, 2, 1, 0].map(k => t0 + DAY - k * 100)
		);
		assert.equal(more, DAY / 100 - 5);
	});

	it("property (every): the newest `limit` of all fire times in (from, to], and an exact count", () => {
		fc.assert(
			fc.property(
				fc.integer({ min: 100, max: 1000 }),
				fc.integer({ min: -5000, max: 5000 }),
				fc.integer({ min: 0, max: 50_000 }),
				fc.integer({ min: 0, max: 20 }),
				fc.option(fc.integer({ min: -2000, max: 60_000 })),
				fc.option(fc.integer({ min: -2000, max: 60_000 })),
				(every, fromDelta, length, limit, startDelta, endDelta) => {
					const bounds: Bounds = {
						anchor: t0,
						startAt: startDelta === null ? null : t0 + startDelta,
						endAt: endDelta === null ? null : t0 + endDelta
					};
					const from = t0 + fromDelta;
					const to = from + length;
					const all: number[] = [];
					for (
						let t = nextFireTime({ every }, from, bounds);
						t !== null && t <= to;
						t = nextFireTime({ every }, t, bounds)
					)
						all.push(t);
					const { times, more } = fireTimesBetween({ every }, from, to, bounds, limit);
					assert.deepEqual(times, all.slice(Math.max(0, all.length - limit)));
					assert.equal(more, all.length - times.length);
				}
			),
			{ numRuns: 300 }
		);
	});
});

describe("schedule: parseSchedule", () => {
	function rejects(input: unknown, field: string, message?: RegExp | string): void {
		let error: unknown;
		try {
			parseSchedule(input);
		} catch (err) {
			error = err;
		}
		assert.ok(error instanceof ScheduleError, `${JSON.stringify(input)} should be rejected`);
		assert.equal(error.name, "ScheduleError");
		assert.equal(error.field, field, `${JSON.stringify(input)}: ${error.message}`);
		if (typeof message === "string") assert.ok(error.message.includes(message), `${error.message} lacks ${message}`);
		else if (message) assert.match(error.message, message);
	}

	it("an invalid cron names schedule.cron and carries the cron package's reason", () => {
		let reason = "";
		try {
			new CronTime("61 * * * *");
		} catch (err) {
			reason = (err as Error).message;
		}
		assert.ok(reason.length > 0);
		rejects({ cron: "61 * * * *" }, "schedule.cron", reason);
		rejects({ cron: "* 25 * * *" }, "schedule.cron", /invalid/);
		rejects({ cron: "*/0 * * * *" }, "schedule.cron");
		rejects({ cron: "foo * * * *" }, "schedule.cron");
		rejects({ cron: "" }, "schedule.cron");
		rejects({ cron: 5 }, "schedule.cron");
	});

	it("a cron needs 5 or 6 fields", () => {
		rejects({ cron: "* * * *" }, "schedule.cron", /has 4/);
		rejects({ cron: "* * * * * * *" }, "schedule.cron", /has 7/);
		rejects({ cron: "@daily" }, "schedule.cron", /has 1/);
	});

	it("a cron that can never fire is refused rather than failing later", () => {
		rejects({ cron: "0 0 30 2 *" }, "schedule.cron", /never fires/);
		rejects({ cron: "0 0 31 apr,jun,sep,nov *" }, "schedule.cron", /never fires/);
		assert.deepEqual(parseSchedule({ cron: "0 0 29 2 *" }), { cron: "0 0 29 2 *" });
		assert.deepEqual(parseSchedule({ cron: "0 0 31 4 1" }), { cron: "0 0 31 4 1" }, "day of week may still match");
	});

	it("time zones: known IANA names only, and only on cron schedules", () => {
		rejects({ cron: "0 9 * * *", timezone: "Mars/Base" }, "schedule.timezone", "Mars/Base");
		rejects({ cron: "0 9 * * *", timezone: 2 }, "schedule.timezone");
		rejects({ cron: "0 9 * * *", timezone: null }, "schedule.timezone");
		rejects({ every: 1000, timezone: "Europe/Berlin" }, "schedule.timezone");
		rejects({ at: "2026-06-01T12:00:00Z", timezone: "UTC" }, "schedule.timezone");
	});

	it("every and delayAfterFinish: whole milliseconds, at least 100", () => {
		assert.equal(MIN_INTERVAL_MS, 100);
		rejects({ every: 99 }, "schedule.every", /at least 100/);
		rejects({ every: 0 }, "schedule.every");
		rejects({ every: -1000 }, "schedule.every");
		rejects({ every: 1000.5 }, "schedule.every", /whole number/);
		rejects({ every: "1000" }, "schedule.every");
		rejects({ every: Number.NaN }, "schedule.every");
		rejects({ every: Infinity }, "schedule.every");
		rejects({ delayAfterFinish: 50 }, "schedule.delayAfterFinish");
		assert.deepEqual(parseSchedule({ every: 100 }), { every: 100 });
	});

	it("exactly one kind, and nothing unknown", () => {
		rejects({ cron: "* * * * *", every: 1000 }, "schedule", /exactly one/);
		rejects({ at: "2026-06-01T12:00:00Z", delayAfterFinish: 1000 }, "schedule");
		rejects({}, "schedule");
		rejects({ timezone: "UTC" }, "schedule");
		rejects(null, "schedule");
		rejects("*/5 * * * *", "schedule");
		rejects([{ every: 1000 }], "schedule");
		rejects({ every: 1000, jitter: 5 }, "schedule.jitter", /Unknown/);
	});

	it("at must be an ISO-8601 date-time", () => {
		rejects({ at: "tomorrow at noon" }, "schedule.at", /ISO-8601/);
		rejects({ at: "2026-02-30T12:00:00Z" }, "schedule.at");
		rejects({ at: 1780000000000 }, "schedule.at");
		rejects({ at: "" }, "schedule.at");
	});

	it("returns valid schedules in normal form", () => {
		assert.deepEqual(parseSchedule({ cron: "  */5 * * * * *  " }), { cron: "*/5 * * * * *" });
		assert.deepEqual(parseSchedule({ cron: "0 9 * * 1-5", timezone: "America/New_York" }), {
			cron: "0 9 * * 1-5",
			timezone: "America/New_York"
		});
		assert.deepEqual(parseSchedule({ cron: "0 9 * * *", timezone: undefined }), { cron: "0 9 * * *" });
		assert.deepEqual(parseSchedule({ every: 5000 }), { every: 5000 });
		assert.deepEqual(parseSchedule({ delayAfterFinish: 250 }), { delayAfterFinish: 250 });
		assert.deepEqual(parseSchedule({ at: "2026-06-01T12:00:00+02:00" }), { at: "2026-06-01T12:00:00.000+02:00" });
		assert.deepEqual(parseSchedule({ at: "2026-06-01T10:00:00Z" }), { at: "2026-06-01T10:00:00.000Z" });
		assert.deepEqual(parseSchedule({ at: "2026-06-01T10:00" }), { at: "2026-06-01T10:00:00.000Z" });
		// normal form parses to itself
		for (const input of [{ cron: "*/5 * * * * *" }, { every: 5000 }, { at: "2026-06-01T12:00:00.000+02:00" }] as Schedule[])
			assert.deepEqual(parseSchedule(parseSchedule(input)), input);
	});
});

// ---- property tests against an independent reading of the expression ----

interface Field {
	text: string;
	values: number[];
}

const range = (lo: number, hi: number): number[] => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

/** A cron field over 0..max: *, * /step, a list, or a-b/step; with the values it stands for. */
function fieldArb(max: number): fc.Arbitrary<Field> {
	return fc.oneof(
		fc.constant({ text: "*", values: range(0, max) }),
		fc
			.integer({ min: 2, max: Math.min(max, 30) })
			.map(step => ({ text: `*/${step}`, values: range(0, max).filter(v => v % step === 0) })),
		fc
			.uniqueArray(fc.integer({ min: 0, max }), { minLength: 1, maxLength: 4 })
			.map(vs => ({ text: vs.join(","), values: vs })),
		fc
			.tuple(fc.integer({ min: 0, max }), fc.integer({ min: 0, max }), fc.integer({ min: 1, max: 10 }))
			.map(([a, b, step]) => {
				const [lo, hi] = a <= b ? [a, b] : [b, a];
				return { text: `${lo}-${hi}/${step}`, values: range(lo, hi).filter(v => (v - lo) % step === 0) };
			})
	);
}

interface Expression {
	cron: string;
	seconds: Set<number>;
	minutes: Set<number>;
	hours: Set<number>;
}

const expressionArb: fc.Arbitrary<Expression> = fc
	.record({ seconds: fc.option(fieldArb(59)), minutes: fieldArb(59), hours: fieldArb(23) })
	.map(({ seconds, minutes, hours }) => ({
		cron: `${seconds ? seconds.text + " " : ""}${minutes.text} ${hours.text} * * *`,
		seconds: new Set(seconds ? seconds.values : [0]),
		minutes: new Set(minutes.values),
		hours: new Set(hours.values)
	}));

/** Whether a wall-clock time (ms, read as UTC) matches the expression. */
function matches(e: Expression, wall: number): boolean {
	const s = Math.floor(wall / SECOND);
	return e.seconds.has(s % 60) && e.minutes.has(Math.floor(s / 60) % 60) && e.hours.has(Math.floor(s / 3600) % 24);
}

describe("schedule: cron properties", () => {
	it("zones without DST: nextFireTime(t) > t, matches, and nothing matches in between", () => {
		const zones = [undefined, "UTC", "Asia/Tokyo", "Asia/Kolkata", "Asia/Kathmandu"];
		fc.assert(
			fc.property(
				expressionArb,
				fc.constantFrom(...zones),
				fc.integer({ min: ms("2022-01-01T00:00:00Z"), max: ms("2030-01-01T00:00:00Z") }),
				(e, timezone, t) => {
					const schedule = parseSchedule(timezone ? { cron: e.cron, timezone } : { cron: e.cron });
					const offset = timezone ? IANAZone.create(timezone).offset(t) * MINUTE : 0;
					const next = nextFireTime(schedule, t, NO_BOUNDS)!;
					assert.ok(next > t);
					assert.ok(next - t <= DAY, "every generated expression fires daily");
					assert.ok(matches(e, next + offset), `${iso(next)} matches ${e.cron}`);
					for (let s = Math.floor(t / SECOND) * SECOND + SECOND; s < next; s += SECOND)
						if (matches(e, s + offset)) assert.fail(`${iso(s)} matches ${e.cron} too, before ${iso(next)}`);
				}
			),
			{ numRuns: 150 }
		);
	});

	it("UTC, all six fields: the fire time the cron package's own (slower) search finds", () => {
		const field = (low: number, high: number) =>
			fc.oneof(
				fc.constant("*"),
				fc.integer({ min: 2, max: Math.min(high, 30) }).map(step => `*/${step}`),
				fc.uniqueArray(fc.integer({ min: low, max: high }), { minLength: 1, maxLength: 4 }).map(vs => vs.join(",")),
				fc
					.tuple(
						fc.integer({ min: low, max: high }),
						fc.integer({ min: low, max: high }),
						fc.integer({ min: 1, max: 10 })
					)
					.map(([a, b, step]) => `${Math.min(a, b)}-${Math.max(a, b)}/${step}`)
			);
		fc.assert(
			fc.property(
				fc.tuple(fc.option(field(0, 59)), field(0, 59), field(0, 23), field(1, 31), field(1, 12), field(0, 7)),
				fc.integer({ min: ms("2022-01-01T00:00:00Z"), max: ms("2030-01-01T00:00:00Z") }),
				([seconds, ...rest], t) => {
					const cron = [...(seconds === null ? [] : [seconds]), ...rest].join(" ");
					let schedule: Schedule;
					try {
						schedule = parseSchedule({ cron });
					} catch (err) {
						if (err instanceof ScheduleError) return; // never fires
						throw err;
					}
					const expected = new CronTime(cron, "UTC").getNextDateFrom(DateTime.fromMillis(t, { zone: "utc" }), "UTC");
					assert.equal(iso(nextFireTime(schedule, t, NO_BOUNDS)), iso(expected.toMillis()), `${cron} after ${iso(t)}`);
				}
			),
			{ numRuns: 500 }
		);
	});

	// Around the clock changes of 2026: the first occurrence of each matching wall time fires,
	// the second only when the expression names every hour, and a wall time that does not exist
	// fires at the end of the gap.
	const changes: [string, string][] = [
		["Europe/Berlin", "2026-03-29T01:00:00Z"],
		["Europe/Berlin", "2026-10-25T01:00:00Z"],
		["America/New_York", "2026-03-08T07:00:00Z"],
		["America/New_York", "2026-11-01T06:00:00Z"],
		["Australia/Sydney", "2026-04-04T16:00:00Z"],
		["Australia/Sydney", "2026-10-03T16:00:00Z"],
		["Australia/Lord_Howe", "2026-04-04T15:00:00Z"], // back half an hour
		["Australia/Lord_Howe", "2026-10-03T15:30:00Z"] // forward half an hour
	];
	/** The zone's offset at t, from a table minute by minute over [change - 8 h, change + 32 h] (clocks change on whole minutes). */
	const tables = new Map<string, (t: number) => number>();
	function offsetsNear(zone: string, change: number): (t: number) => number {
		const key = `${zone}|${change}`;
		let offsetAt = tables.get(key);
		if (!offsetAt) {
			const start = change - 8 * HOUR;
			const z = IANAZone.create(zone);
			const minutes = range(0, 40 * 60).map(i => z.offset(start + i * MINUTE) * MINUTE);
			offsetAt = t => {
				const i = Math.floor((t - start) / MINUTE);
				if (i < 0 || i >= minutes.length) assert.fail("outside the table");
				return minutes[i];
			};
			tables.set(key, offsetAt);
		}
		return offsetAt;
	}

	function fires(e: Expression, offsetAt: (t: number) => number, s: number): boolean {
		const offset = offsetAt(s);
		const before = offsetAt(s - SECOND);
		if (before < offset) {
			// s ends a gap: any wall time in it, or s's own, fires here
			for (let wall = s + before; wall <= s + offset; wall += SECOND) if (matches(e, wall)) return true;
			return false;
		}
		if (!matches(e, s + offset)) return false;
		const earlier = offsetAt(s - 2 * HOUR);
		const secondPass = earlier > offset && offsetAt(s - (earlier - offset)) === earlier;
		return !secondPass || e.hours.size === 24;
	}

	it("zones with DST: nextFireTime(t) is the first fire time after t by that reading", () => {
		fc.assert(
			fc.property(
				expressionArb,
				fc.constantFrom(...changes),
				fc.integer({ min: -3 * HOUR, max: 3 * HOUR }),
				(e, [zone, at], delta) => {
					const change = ms(at);
					const offsetAt = offsetsNear(zone, change);
					const t = change + delta;
					const next = nextFireTime(parseSchedule({ cron: e.cron, timezone: zone }), t, NO_BOUNDS)!;
					assert.ok(next > t);
					assert.ok(next - t <= 26 * HOUR);
					assert.ok(fires(e, offsetAt, next), `${iso(next)} fires for ${e.cron} in ${zone}`);
					for (let s = Math.floor(t / SECOND) * SECOND + SECOND; s < next; s += SECOND)
						if (fires(e, offsetAt, s))
							assert.fail(`${iso(s)} fires for ${e.cron} in ${zone} too, before ${iso(next)}`);
				}
			),
			{ numRuns: 150 }
		);
	});
});
