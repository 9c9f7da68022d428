/**
 * Misfire policy: what becomes of fire times that came and went unfired — the scheduler was
 * down or stalled, a replica left, the job was paused. Pure: the caller writes the plan.
 *
 * A fire time at most `grace` late (the `misfireThreshold` setting, as Quartz's) is not a
 * misfire on its own: fired late, it counts as on time. But when several are late together
 * the policy decides for all of them, within the grace or not, so that a restart does not
 * fire a burst:
 * - `skip` fires only the newest, and only if it is within the grace; the rest are MISSED;
 * - `fire_once` fires the newest (CAUGHT_UP) and records the rest MISSED;
 * - `catch_up` fires each one within the job's catch-up window (CAUGHT_UP), the older MISSED.
 * Fire times paused over are PAUSED rather than MISSED, and none counts as on time.
 */
import type { MisfirePolicy } from "../../models/job.model.ts";

export interface LateRuns {
	policy: MisfirePolicy;
	/** The late fire times, oldest first. */
	times: number[];
	/** Older late fire times not listed (counted only). */
	more: number;
	now: number;
	grace: number;
	catchUpWindowMs: number;
	pausedAt: number | null;
	resumedAt: number | null;
}

export interface LatePlan {
	fire: { time: number; outcome: "FIRED" | "CAUGHT_UP"; detail: string | null }[];
	unfired: { time: number; outcome: "MISSED" | "PAUSED"; detail: string }[];
}

export function planLate(late: LateRuns): LatePlan {
	const { policy, times, more, now } = late;
	const pausedOver = (t: number) => late.resumedAt !== null && t <= late.resumedAt;
	const onTime = (t: number) => now - t <= late.grace && !pausedOver(t);
	const newest = times.at(-1);
	if (newest === undefined) return { fire: [], unfired: [] };
	// One fire time, a little late (a busy event loop, a slow claim): an ordinary fire.
	if (times.length === 1 && more === 0 && onTime(newest))
		return { fire: [{ time: newest, outcome: "FIRED", detail: null }], unfired: [] };

	const fire: LatePlan["fire"] = [];
	switch (policy) {
		case "skip":
			if (onTime(newest))
				fire.push({ time: newest, outcome: "FIRED", detail: "late, within the misfire grace; policy skip" });
			break;
		case "fire_once":
			fire.push({
				time: newest,
				outcome: "CAUGHT_UP",
				detail: `caught up (misfire policy fire_once, ${times.length + more} missed)`
			});
			break;
		case "catch_up":
			for (const t of times)
				if (now - t <= late.catchUpWindowMs)
					fire.push({ time: t, outcome: "CAUGHT_UP", detail: "caught up (misfire policy catch_up)" });
			break;
	}
	const fired = new Set(fire.map(f => f.time));
	const paused = (t: number) => late.pausedAt !== null && t >= late.pausedAt && pausedOver(t);
	const unfired: LatePlan["unfired"] = times
		.filter(t => !fired.has(t))
		.map(t => ({
			time: t,
			outcome: paused(t) ? "PAUSED" : "MISSED",
			detail: `${paused(t) ? "paused" : "not fired in time"}; policy ${policy}`
		}));
	if (more > 0 && unfired.length > 0) unfired[0].detail = `${more} earlier fire time(s) also missed, not recorded one by one`;
	return { fire, unfired };
}
