import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { ChainWriter } from "../../../../services/audit/writer.ts";
import { ChainCheck, type ChainHead } from "../../../../services/audit/chain.ts";
import type { AuditStore } from "../../../../services/audit/store.ts";
import type { AuditEntry } from "../../../../lib/contracts.ts";
import type { AuditLogRow } from "../../../../models/audit.model.ts";

const entry = (i: number): AuditEntry => ({
	at: i,
	actor: "a",
	actorType: "user",
	action: "x.y",
	object: null,
	address: null,
	userAgent: null,
	outcome: "ok",
	changes: { i }
});

/** The table in memory, with its unique (chain, seq) index and a slow insert. */
class MemoryStore {
	rows: AuditLogRow[] = [];
	async head(chain: string): Promise<ChainHead | null> {
		const mine = this.rows.filter(r => r.chain === chain);
		const last = mine[mine.length - 1];
		return last ? { seq: last.seq, hash: last.hash } : null;
	}
	async append(rows: Omit<AuditLogRow, "id">[]): Promise<void> {
		await new Promise(resolve => setImmediate(resolve));
		for (const row of rows)
			if (this.rows.some(r => r.chain === row.chain && r.seq === row.seq))
				throw Object.assign(new Error("UNIQUE constraint failed"), { code: "SQLITE_CONSTRAINT" });
		for (const row of rows) this.rows.push({ ...row, id: this.rows.length + 1 });
	}
}

describe("the chain writer", () => {
	it("serializes batches sent at once: one unbroken chain", async () => {
		const store = new MemoryStore();
		const writer = new ChainWriter(store as unknown as AuditStore, "node-a");
		await Promise.all([writer.append([entry(1), entry(2)]), writer.append([entry(3)]), writer.append([entry(4), entry(5)])]);
		assert.equal(new ChainCheck("node-a").feed(store.rows), null);
		assert.deepEqual(
			store.rows.map(r => r.at),
			[1, 2, 3, 4, 5]
		);
	});

	it("continues its chain after a restart with the same name", async () => {
		const store = new MemoryStore();
		await new ChainWriter(store as unknown as AuditStore, "node-a").append([entry(1), entry(2)]);
		await new ChainWriter(store as unknown as AuditStore, "node-a").append([entry(3)]);
		await new ChainWriter(store as unknown as AuditStore, "node-b").append([entry(4)]);
		assert.equal(new ChainCheck("node-a").feed(store.rows.filter(r => r.chain === "node-a")), null);
		assert.deepEqual(
			store.rows.map(r => [r.chain, r.seq]),
			[
				["node-a", 1],
				["node-a", 2],
				["node-a", 3],
				["node-b", 1]
			]
		);
	});

	it("reads the head again when another writer took its seq, rather than fork", async () => {
		const store = new MemoryStore();
		const one = new ChainWriter(store as unknown as AuditStore, "node-a");
		const two = new ChainWriter(store as unknown as AuditStore, "node-a");
		await one.append([entry(1)]);
		await two.append([entry(2)]);
		await one.append([entry(3)]);
		assert.equal(new ChainCheck("node-a").feed(store.rows), null);
		assert.equal(store.rows.length, 3);
	});
});
