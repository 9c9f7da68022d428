/** A node's GET /metrics, parsed, and the value of one sample in it. */
import parsePrometheusTextFormat, { type PromFamily } from "parse-prometheus-text-format";

export async function scrape(url: string): Promise<PromFamily[]> {
	const res = await fetch(`${url}/metrics`);
	if (res.status !== 200) throw new Error(`GET /metrics: ${res.status}`);
	return parse(await res.text());
}

/**
 * The text parsed. The parser folds a labelled histogram's samples into one unlabelled item and
 * loses their labels: histograms are read as untyped families (`x_bucket`, `x_sum`, `x_count`),
 * each sample with its labels, by leaving out their HELP and TYPE lines.
 */
export function parse(text: string): PromFamily[] {
	const histograms = new Set([...text.matchAll(/^# TYPE (\S+) histogram$/gm)].map(m => m[1]));
	const kept = text.split("\n").filter(line => {
		const meta = /^# (?:HELP|TYPE) (\S+)/.exec(line);
		return !meta || !histograms.has(meta[1]);
	});
	return parsePrometheusTextFormat(kept.join("\n"));
}

/**
 * The sum of the samples of `name` whose labels include `labels` (0 when none). For a histogram,
 * `field` picks its `count` or `sum` series.
 */
export function sample(
	families: PromFamily[],
	name: string,
	labels: Record<string, string> = {},
	field: "value" | "count" | "sum" = "value"
): number {
	const series = field === "value" ? name : `${name}_${field}`;
	let total = 0;
	// A histogram's untyped series come as one family per item (its samples are interleaved).
	for (const metric of families.filter(f => f.name === series).flatMap(f => f.metrics)) {
		if (!Object.entries(labels).every(([k, v]) => metric.labels?.[k] === v)) continue;
		total += Number(metric.value ?? 0);
	}
	return total;
}
