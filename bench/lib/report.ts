/** The suite's one table: a row per figure, the median of its repetitions and their range. */
import { SECTIONS, meets, spread, type Row } from "./cells.ts";
import { fmt } from "./stats.ts";

const HEADER = ["section", "system", "durability", "figure", "median", "min–max", "unit", "n", "target", "met"];
/** Columns of numbers, aligned right; the others left. */
const RIGHT = new Set(["median", "min–max", "n", "target"]);

export function tableOf(rows: Row[]): string {
	const ordered = [...rows].sort((a, b) => SECTIONS.indexOf(a.section) - SECTIONS.indexOf(b.section));
	const cells = ordered.map(row => {
		const { median, min, max } = spread(row.values);
		const met = meets(row);
		return [
			row.section,
			row.system,
			row.durability,
			row.figure,
			row.values.length === 0 ? "-" : fmt(median),
			row.values.length > 1 ? `${fmt(min)}–${fmt(max)}` : "",
			row.unit,
			String(row.values.length),
			row.target ? `${row.target.op} ${fmt(row.target.value)}` : "",
			met === null ? "" : met ? "yes" : "NO"
		];
	});
	const widths = HEADER.map((h, i) => Math.max(h.length, ...cells.map(r => r[i].length)));
	const line = (r: string[]) =>
		r
			.map((c, i) => (RIGHT.has(HEADER[i]) ? c.padStart(widths[i]) : c.padEnd(widths[i])))
			.join("  ")
			.trimEnd();
	const out = [line(HEADER), widths.map(w => "-".repeat(w)).join("  ")];
	let section = "";
	for (const [i, r] of cells.entries()) {
		// A blank line between sections.
		if (ordered[i].section !== section && section !== "") out.push("");
		section = ordered[i].section;
		out.push(line(r));
	}
	return out.join("\n");
}

export function printRows(rows: Row[]): void {
	console.log(tableOf(rows));
}
