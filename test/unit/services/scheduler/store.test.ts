/** The scheduler's statements on a fresh, migrated SQLite database (MariaDB: test/integration/scheduler.test.ts). */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Sequelize } from "sequelize";
import { acquireDatabase, releaseDatabase } from "../../../../lib/db.ts";
import { defineJob, type JobRow } from "../../../../models/job.model.ts";
import { JobStore } from "../../../../services/scheduler/store.ts";

const job = (id: string, createdAt: number): JobRow => ({
	id,
	name: `job ${id}`,
	schedule: JSON.stringify({ every: 1000 }),
	task: JSON.stringify({ terminalId: "t", type: "x" }),
	misfirePolicy: "skip",
	overlapPolicy: "allow",
	catchUpWindowMs: 3_600_000,
	startAt: null,
	endAt: null,
	enabled: true,
	pausedAt: null,
	resumedAt: null,
	createdBy: "o'brien", // a quote: values never meet the SQL text
	createdAt,
	updatedAt: createdAt,
	version: 1
});

describe("scheduler store (SQLite)", () => {
	const dir = mkdtempSync(join(tmpdir(), "tern-store-"));
	const uri = `sqlite://${join(dir, "tern.sqlite")}`;
	let sequelize: Sequelize;
	let store: JobStore;

	before(async () => {
		sequelize = await acquireDatabase(uri);
		store = new JobStore(defineJob(sequelize));
	});
	after(async () => {
		await releaseDatabase(uri);
		rmSync(dir, { recursive: true, force: true });
	});

	it("inserts, reads, updates (bumping the version) and removes a job with its ledger", async () => {
		await store.insert(job("a", 1000));
		assert.deepEqual(await store.get("a"), job("a", 1000));
		assert.equal(await store.update("a", { name: "renamed; DROP TABLE jobs", enabled: false, updatedAt: 2000 }), true);
		const row = await store.get("a");
		assert.deepEqual([row?.name, row?.enabled, row?.version, row?.updatedAt], ["renamed; DROP TABLE jobs", false, 2, 2000]);
		assert.equal(await store.update("missing", { name: "x" }), false);
		await store.claim("a", 5000, "n1", 5000);
		await store.remove("a");
		assert.equal(await store.get("a"), null);
		assert.equal(await store.fire("a", 5000), null);
	});

	it("a fire time is claimed once; a batch claim answers only the fires it won", async () => {
		await store.insert(job("b", 0));
		assert.equal(await store.claim("b", 1000, "n1", 10), true);
		assert.equal(await store.claim("b", 1000, "n2", 11), false);
		assert.equal(await store.record("b", 1000, "MISSED", "n2", 11, "late"), false);
		const fires = [1000, 2000, 3000].map(fireTime => ({ jobId: "b", fireTime }));
		assert.deepEqual([...(await store.claimMany(fires, "n2", 20))].sort(), ["b:2000", "b:3000"]);
		assert.deepEqual([...(await store.claimMany([{ jobId: "b", fireTime: 4000 }], "n2", 21))], ["b:4000"]);
		assert.equal((await store.fire("b", 1000))?.node, "n1");
	});

	it("settles claims one by one and in batches, marks runs ended, and reads the ledger back", async () => {
		await store.insert(job("c", 0));
		await store.claimMany(
			[1000, 2000, 3000].map(fireTime => ({ jobId: "c", fireTime })),
			"n1",
			30
		);
		await store.settleMany("FIRED", 40, [
			{ jobId: "c", fireTime: 1000, taskIds: ["t1"] },
			{ jobId: "c", fireTime: 2000, taskIds: ["t2", "t3"] }
		]);
		await store.settle("c", 3000, { outcome: "SKIPPED_OVERLAP", detail: "busy" });
		await store.settle("c", 3000, { outcome: "FIRED", taskIds: ["late"] }); // settled already: unchanged
		await store.finished("c", 2000, 50);
		await store.record("c", 4000, "MISSED", "n1", 60, "not fired in time");

		assert.deepEqual((await store.lastFireTimes(["c"])).get("c"), 4000);
		const last = await store.lastRun("c");
		assert.deepEqual([last?.fireTime, last?.taskIds, last?.finishedAt], [2000, JSON.stringify(["t2", "t3"]), 50]);
		assert.equal((await store.lastRuns()).get("c")?.fireTime, 2000);
		const skipped = await store.fire("c", 3000);
		assert.deepEqual([skipped?.outcome, skipped?.detail, skipped?.taskIds], ["SKIPPED_OVERLAP", "busy", null]);
		const page = await store.history("c", 1, 2);
		assert.deepEqual([page.total, page.rows.map(r => r.fireTime)], [4, [3000, 2000]]);
		assert.deepEqual(
			(await store.history("c", 0, 10, "FIRED")).rows.map(r => r.fireTime),
			[2000, 1000]
		);
	});

	it("finds claims left unsettled", async () => {
		await store.insert(job("d", 0));
		await store.claim("d", 1000, "dead", 100);
		await store.claim("d", 2000, "dead", 900);
		assert.deepEqual(
			(await store.staleClaims(500, 10)).filter(c => c.jobId === "d").map(c => c.fireTime),
			[1000]
		);
	});
});
