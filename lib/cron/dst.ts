/**
 * Which instants a zone's wall-clock times are, around clock changes. The `cron` package is
 * only ever asked about wall times in UTC (which has no DST): its own DST handling makes e.g.
 * `0 3 * * *` fire twice on the day clocks go back, once at 02:00. These functions map its
 * answers back to instants:
 * - a wall time that does not exist (the hour skipped when clocks go forward) is the first
 *   moment after the gap;
 * - a wall time that happens twice (the hour repeated when clocks go back) is its first
 *   occurrence; the caller decides whether the second one counts too.
 */
import type { Zone } from "luxon";

export const DAY_MS = 86_400_000;

/** Offset of the zone from UTC at instant t, ms. */
export function offsetAt(zone: Zone, t: number): number {
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

/** The first instant showing wall time `wall` in the zone; in a gap (clocks went forward), the end of the gap. */
export function firstInstantOf(zone: Zone, wall: number): number {
	const before = offsetAt(zone, wall - DAY_MS);
	const after = offsetAt(zone, wall + DAY_MS);
	const instants = [before, after].map(o => wall - o).filter(t => wall - t === offsetAt(zone, t));
	if (instants.length > 0) return Math.min(...instants);
	return changeBetween(zone, wall - after, wall - before);
}

/** The hour the clocks go back over, [start, end), that t is in or that begins within a day after t. */
export function repeatNear(zone: Zone, t: number): { start: number; end: number; offset: number } | null {
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
