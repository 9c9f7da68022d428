/** How the console writes times, durations and sizes. */

export function exact(at: string | number | null | undefined): string {
	if (at === null || at === undefined) return "—";
	const date = new Date(at);
	return Number.isNaN(date.getTime()) ? "—" : date.toLocaleString();
}

export function ago(at: string | number | null | undefined, now = Date.now()): string {
	if (at === null || at === undefined) return "—";
	const ms = now - new Date(at).getTime();
	if (Number.isNaN(ms)) return "—";
	const future = ms < 0;
	const s = Math.abs(ms) / 1000;
	const text =
		s < 5
			? "just now"
			: s < 60
				? `${Math.round(s)} s`
				: s < 3600
					? `${Math.round(s / 60)} min`
					: s < 86400
						? `${Math.round(s / 3600)} h`
						: `${Math.round(s / 86400)} d`;
	return text === "just now" ? text : future ? `in ${text}` : `${text} ago`;
}

/** A duration in ms, as a person reads it: 850 ms, 2.4 s, 3 min 5 s. */
export function duration(ms: number | null | undefined): string {
	if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
	if (ms < 1) return `${ms.toFixed(2)} ms`;
	if (ms < 1000) return `${Math.round(ms)} ms`;
	if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
	const m = Math.floor(ms / 60_000);
	return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function bytes(n: number): string {
	return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${(n / 1024 / 1024).toFixed(1)} MiB`;
}
