/**
 * Conformance of lib/cron/fields.ts with the `cron` package: the field tables are read through
 * the package's public API (`toJSON`, `getNextDateFrom`). If a new version of the package
 * answers in another shape, these fail (rather than the scheduler quietly falling back to the
 * package's slow search, or worse, reading the fields wrongly).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { CronTime } from "cron";
import { DateTime } from "luxon";
import { cronOf, fieldValues, nextWall } from "../../../../lib/cron/fields.ts";

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const ALL = [range(0, 59), range(0, 59), range(0, 23), range(1, 31), range(1, 12), range(0, 6)];

/** Expressions and the values of their six fields (seconds first). */
const CASES: [string, number[][]][] = [
	["*/5 * * * * *", [range(0, 11).map(i => i * 5), ...ALL.slice(1)]],
	["0 9 * * 1-5", [[0], [0], [9], ALL[3], ALL[4], [1, 2, 3, 4, 5]]],
	["0 0 1,15 * mon-fri", [[0], [0], [0], [1, 15], ALL[4], [1, 2, 3, 4, 5]]],
	["0 0 * * 7", [[0], [0], [0], ALL[3], ALL[4], [0]]],
	["0 0 * * 1-7", [[0], [0], [0], ALL[3], ALL[4], ALL[5]]],
	["0 0 1 jan-dec *", [[0], [0], [0], [1], ALL[4], ALL[5]]],
	// The package's toJSON writes `*` for these too (all but the field's last value).
	["0-58 * * * * *", [range(0, 58), ...ALL.slice(1)]],
	["0 0-58 * * * *", [[0], range(0, 58), ...ALL.slice(2)]],
	["0 0 0-22 * * *", [[0], [0], range(0, 22), ...ALL.slice(3)]],
	["0 0 0 1-30 * *", [[0], [0], [0], range(1, 30), ...ALL.slice(4)]],
	["0 0 0 * 1-11 *", [[0], [0], [0], ALL[3], range(1, 11), ALL[5]]],
	["0 0 0 * * 0-5", [[0], [0], [0], ALL[3], ALL[4], range(0, 5)]]
];

describe("lib/cron fields: the cron package's public parse", () => {
	for (const [expression, expected] of CASES)
		it(`${expression}: every field as the package reads it`, () => {
			const values = fieldValues(new CronTime(expression, "UTC"), expression);
			assert.ok(values, "the package's toJSON has the shape fields.ts reads");
			assert.deepEqual(
				values.map(v => [...v].sort((a, b) => a - b)),
				expected
			);
			assert.ok(cronOf(expression).fields, "the fast tables are used, not the fallback");
		});

	it("the fast search finds what the package's own search finds, for each case", () => {
		const starts = ["2026-01-01T00:00:00Z", "2026-02-28T23:59:58Z", "2026-06-30T22:58:59Z", "2027-12-31T23:59:59Z"];
		for (const [expression] of CASES)
			for (const start of starts) {
				const wall = Date.parse(start);
				const expected = new CronTime(expression, "UTC").getNextDateFrom(
					DateTime.fromMillis(wall, { zone: "utc" }),
					"UTC"
				);
				assert.equal(
					new Date(nextWall(cronOf(expression), wall)).toISOString(),
					new Date(expected.toMillis()).toISOString(),
					`${expression} after ${start}`
				);
			}
	});
});
