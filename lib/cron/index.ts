/**
 * Schedules and their fire times. The `cron` package is used through its public API only
 * (see fields.ts); its DST handling is replaced by dst.ts.
 */
export { MIN_INTERVAL_MS, ScheduleError, type Bounds, type Schedule } from "./types.ts";
export { parseSchedule } from "./parse.ts";
export { fireTimesBetween, nextFireTime, nextFireTimes } from "./next-fire.ts";
