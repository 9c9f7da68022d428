/** The suite's one table: a row per figure, the median of its repetitions and their range. */
import { SECTIONS, meets, spread, type Row } from "./cells.ts";
import { fmt, table } from "./stats.ts";

export function tableOf(rows: Row[]): string {
	const ordered = [...rows].sort((a, b) => SECTIONS.indexOf(a.section) - SECTIONS.indexOf(b.section));
	return table(
		["section", "system", "durability", "figure", "median", "min–max", "unit", "n", "target", "met"],
		ordered.map(row => {
			const { median, min, max } = spread(row.values);
			const met = meets(row);
			return [
				row.section,
				row.system,
				row.durability,
				row.figure,
				fmt(median),
				row.values.length > 1 ? `${fmt(min)}–${fmt(max)}` : "",
				row.unit,
				row.values.length,
				row.target ? `${row.target.op} ${fmt(row.target.value)}` : "",
				met === null ? "" : met ? "yes" : "NO"
			];
		})
	);
}

export function printRows(rows: Row[]): void {
	console.log(tableOf(rows));
}
