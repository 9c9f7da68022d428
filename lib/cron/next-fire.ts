/**
 * Fire times as pure functions of the schedule and a moment: no clock, no timers. The
 * scheduler asks "what is the first fire time after t?"; tests ask the same with fixed dates.
 *
 * Cron expressions (5 fields, or 6 with seconds first) are matched as wall-clock times by the
 * `cron` package (fields.ts) and mapped to instants in the schedule's time zone (dst.ts).
 */
import { DateTime, FixedOffsetZone, IANAZone, type Zone } from "luxon";
import { offsetAt, firstInstantOf, repeatNear } from "./dst.ts";
import { cronOf, nextWall } from "./fields.ts";
import { expandField } from "./parse.ts";
import type { Bounds, Schedule } from "./types.ts";

function nextCronTime(schedule: { cron: string; timezone?: string }, from: number): number {
	const cron = cronOf(schedule.cron);
	const zone: Zone = schedule.timezone ? IANAZone.create(schedule.timezone) : FixedOffsetZone.utcInstance;
	const repeat = repeatNear(zone, from);
	const inRepeat = repeat !== null && from >= repeat.start;
	// First occurrences: wall times after from's, or after the whole repeated hour when from is in its second pass.
	const wall = inRepeat ? repeat.start - 1 + offsetAt(zone, repeat.start - 1) : from + offsetAt(zone, from);
	let next = firstInstantOf(zone, nextWall(cron, wall));
	// Second occurrences, for expressions that fire every hour.
	const everyHour = cron.fields?.everyHour ?? expandField(schedule.cron.trim().split(/\s+/).at(-4)!, 0, 23).size === 24;
	if (repeat !== null && everyHour) {
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
