/** Durations as operators write them: `90` (seconds), `90s`, `15m`, `12h`, `365d`. */
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** Whole seconds of `value`; a TypeError naming `what` for anything else. */
export function durationSeconds(value: string | number, what: string): number {
	if (typeof value === "number") {
		if (Number.isInteger(value) && value > 0) return value;
		throw new TypeError(`${what} '${value}' is not a positive number of seconds`);
	}
	const match = /^\s*(\d+)\s*([smhd]?)\s*$/.exec(value);
	const seconds = match ? Number(match[1]) * UNIT_SECONDS[match[2] || "s"] : 0;
	if (!Number.isSafeInteger(seconds) || seconds <= 0)
		throw new TypeError(`${what} '${value}' is not a duration such as 3600, 90s, 15m, 12h or 365d`);
	return seconds;
}
