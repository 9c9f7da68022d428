/**
 * Latency summaries and plain-text tables for the benchmarks.
 */

export interface Summary {
	count: number;
	mean: number;
	p50: number;
	p90: number;
	p99: number;
	p999: number;
	max: number;
}

/** Nearest-rank percentiles of a sample, in the sample's unit. Empty samples give zeros. */
export function summarize(values: ArrayLike<number>): Summary {
	const sorted = Float64Array.from(values).sort();
	const n = sorted.length;
	if (n === 0) return { count: 0, mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
	const at = (q: number) => sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))];
	let sum = 0;
	for (const v of sorted) sum += v;
	return {
		count: n,
		mean: round(sum / n),
		p50: round(at(0.5)),
		p90: round(at(0.9)),
		p99: round(at(0.99)),
		p999: round(at(0.999)),
		max: round(sorted[n - 1])
	};
}

export function round(value: number, digits = 3): number {
	const f = 10 ** digits;
	return Math.round(value * f) / f;
}

/** A left-aligned first column, right-aligned others, a rule under the header. */
export function table(header: string[], rows: (string | number)[][]): string {
	const cells = [header, ...rows.map(r => r.map(c => (typeof c === "number" ? fmt(c) : c)))];
	const widths = header.map((_, i) => Math.max(...cells.map(r => (r[i] ?? "").length)));
	const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ");
	return [line(cells[0]), widths.map(w => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join("\n");
}

export function fmt(value: number): string {
	if (!Number.isFinite(value)) return String(value);
	if (Number.isInteger(value)) return String(value);
	const abs = Math.abs(value);
	return value.toFixed(abs >= 100 ? 0 : abs >= 10 ? 1 : 2);
}
