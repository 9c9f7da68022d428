import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChainCheck, EMPTY_HEAD, GENESIS, canonicalJson, hashOf, link } from "../../../../services/audit/chain.ts";
import type { AuditEntry } from "../../../../lib/contracts.ts";
import type { AuditLogRow } from "../../../../models/audit.model.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");

function entry(i: number, changes: Record<string, unknown> | null = { n: i }): AuditEntry {
	return {
		at: T0 + i,
		actor: "admin",
		actorType: "user",
		action: "scheduler.update",
		object: `job:${i}`,
		address: "10.0.0.1",
		userAgent: "curl/8",
		outcome: "ok",
		changes
	};
}

/** `count` rows of chain `node-a` as the table would hold them (ids from 1). */
function chainOf(count: number): AuditLogRow[] {
	const { rows } = link(
		"node-a",
		EMPTY_HEAD,
		Array.from({ length: count }, (_, i) => entry(i))
	);
	return rows.map((row, i) => ({ ...row, id: i + 1 }));
}

describe("the audit hash chain", () => {
	it("writes JSON canonically: keys sorted at every depth, undefined left out", () => {
		assert.equal(
			canonicalJson({ b: 1, a: { d: [2, { f: 1, e: 0 }], c: null }, x: undefined }),
			'{"a":{"c":null,"d":[2,{"e":0,"f":1}]},"b":1}'
		);
		assert.equal(canonicalJson({ b: 1, a: 2 }), canonicalJson({ a: 2, b: 1 }));
	});

	it("links each row to the one before, from the genesis hash, seq 1, 2, 3", () => {
		const rows = chainOf(3);
		assert.deepEqual(
			rows.map(r => r.seq),
			[1, 2, 3]
		);
		assert.equal(rows[0]!.prevHash, GENESIS);
		assert.equal(rows[1]!.prevHash, rows[0]!.hash);
		assert.equal(rows[2]!.prevHash, rows[1]!.hash);
		for (const row of rows) assert.equal(row.hash, hashOf(row));
		assert.equal(rows[0]!.changes, '{"n":0}');
	});

	it("continues a chain from its head", () => {
		const first = link("node-a", EMPTY_HEAD, [entry(0), entry(1)]);
		const next = link("node-a", first.head, [entry(2)]);
		const all = link("node-a", EMPTY_HEAD, [entry(0), entry(1), entry(2)]);
		assert.deepEqual(next.rows[0], all.rows[2]);
		assert.deepEqual(next.head, { seq: 3, hash: all.rows[2]!.hash });
	});

	it("takes numbers as the drivers give them (BIGINT as text)", () => {
		const [row] = chainOf(1);
		assert.equal(hashOf({ ...row!, at: String(row!.at) as unknown as number, seq: "1" as unknown as number }), row!.hash);
	});

	it("passes an untouched chain, fed a page at a time", () => {
		const rows = chainOf(10);
		const check = new ChainCheck("node-a");
		assert.equal(check.feed(rows.slice(0, 4)), null);
		assert.equal(check.feed(rows.slice(4)), null);
		assert.equal(check.checked, 10);
	});

	it("finds an edited field, whichever it is", () => {
		for (const [field, value] of [
			["actor", "mallory"],
			["outcome", "FORBIDDEN"],
			["changes", '{"n":99}'],
			["at", T0 - 1],
			["address", null],
			["object", "job:other"]
		] as const) {
			const rows = chainOf(5);
			rows[2] = { ...rows[2]!, [field]: value };
			const bad = new ChainCheck("node-a").feed(rows);
			assert.equal(bad?.id, 3, field);
			assert.match(bad!.reason, /changed/, field);
		}
	});

	it("finds an edited row whose hash was recomputed: the next row no longer links to it", () => {
		const rows = chainOf(5);
		const forged = { ...rows[2]!, actor: "mallory" };
		rows[2] = { ...forged, hash: hashOf(forged) };
		const bad = new ChainCheck("node-a").feed(rows);
		assert.equal(bad?.id, 4);
		assert.match(bad!.reason, /does not link/);
	});

	it("finds a removed row (a gap in seq) and a removed first row", () => {
		const rows = chainOf(5);
		const bad = new ChainCheck("node-a").feed([...rows.slice(0, 2), ...rows.slice(3)]);
		assert.equal(bad?.id, 4);
		assert.match(bad!.reason, /seq 4 follows seq 2 \(1 missing\)/);
		assert.equal(new ChainCheck("node-a").feed(rows.slice(1))?.id, 2);
	});

	it("finds reordered rows: swapped seq or swapped content", () => {
		const rows = chainOf(5);
		const swappedSeq = [rows[0]!, { ...rows[2]!, seq: 2 }, { ...rows[1]!, seq: 3 }, rows[3]!, rows[4]!];
		assert.equal(new ChainCheck("node-a").feed(swappedSeq)?.id, 3);
		const outOfOrder = [rows[0]!, rows[2]!, rows[1]!];
		assert.equal(new ChainCheck("node-a").feed(outOfOrder)?.id, 3);
	});
});
