/**
 * The dispatcher's SQL driver and group commit on both databases: writes asked for together share
 * one commit, yet each gets its own answer — rows changed, or its own error (a taken key) while the
 * others still commit.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Sequelize } from "sequelize";
import { GroupCommit } from "../../services/dispatcher/commit.ts";
import { DuplicateKeyError, openDriver, type SqlDriver } from "../../services/dispatcher/sql.ts";
import { TestDatabase } from "../helpers/mysql.ts";
import { needs } from "../support/servers.ts";

const DIALECTS = ["sqlite", "mysql"] as const;

for (const dialect of DIALECTS) {
	describe(`group commit on ${dialect}`, { skip: dialect === "mysql" && needs("mariadb") }, () => {
		let sequelize: Sequelize;
		let driver: SqlDriver;
		let database: TestDatabase | null = null;

		before(async () => {
			if (dialect === "mysql") {
				database = await TestDatabase.create("tern_commit");
				sequelize = new Sequelize(database.uri, { logging: false });
				driver = await openDriver(sequelize, database.uri);
			} else {
				sequelize = new Sequelize({ dialect: "sqlite", storage: ":memory:", logging: false });
				driver = await openDriver(sequelize, "sqlite://:memory:");
			}
			await sequelize.query(
				"CREATE TABLE items (id VARCHAR(40) PRIMARY KEY, status VARCHAR(16) NOT NULL, n INTEGER NOT NULL)"
			);
		});

		after(async () => {
			await driver.close();
			await sequelize.close();
			await database?.drop();
		});

		it("answers each write of a shared commit with the rows it changed", async () => {
			const commits = new GroupCommit(driver);
			const inserts = Array.from({ length: 200 }, (_, i) =>
				commits.write("INSERT INTO items (id, status, n) VALUES (?, ?, ?)", [`a${i}`, "PENDING", i])
			);
			assert.deepEqual(await Promise.all(inserts), new Array(200).fill(1));
			assert.ok(commits.stats.commits <= 2, `200 writes of one turn in ${commits.stats.commits} commits`);

			// Compare-and-set: only rows still PENDING change; a second identical CAS changes nothing.
			const first = await Promise.all(
				["a1", "a2", "a1"].map(id =>
					commits.write("UPDATE items SET status = ? WHERE id = ? AND status = ?", ["DONE", id, "PENDING"])
				)
			);
			assert.deepEqual(first, [1, 1, 0], "the second CAS of a1 in the same commit saw the first");
			const rows = await driver.select<{ id: string; status: string }>(
				"SELECT id, status FROM items WHERE id IN (?) ORDER BY id",
				[["a1", "a2", "a3"]]
			);
			assert.deepEqual(
				rows.map(r => `${r.id}:${r.status}`),
				["a1:DONE", "a2:DONE", "a3:PENDING"]
			);
		});

		it("fails a write whose key is taken with DuplicateKeyError and commits the others", async () => {
			const commits = new GroupCommit(driver);
			const results = await Promise.allSettled([
				commits.write("INSERT INTO items (id, status, n) VALUES (?, ?, ?)", ["b1", "PENDING", 1]),
				commits.write("INSERT INTO items (id, status, n) VALUES (?, ?, ?)", ["a5", "PENDING", 5]),
				commits.write("UPDATE items SET n = ? WHERE id = ?", [99, "a6"])
			]);
			assert.equal(results[0].status, "fulfilled");
			assert.equal(results[1].status, "rejected");
			assert.ok((results[1] as PromiseRejectedResult).reason instanceof DuplicateKeyError);
			assert.deepEqual((results[2] as PromiseFulfilledResult<number>).value, 1);
			const [b1] = await driver.select<{ n: number }>("SELECT n FROM items WHERE id = ?", ["b1"]);
			const [a6] = await driver.select<{ n: number }>("SELECT n FROM items WHERE id = ?", ["a6"]);
			assert.equal(Number(b1.n), 1, "the insert beside the failed one was committed");
			assert.equal(Number(a6.n), 99, "so was the update");
		});

		it("keeps writes in the order they were asked for across commits", async () => {
			const commits = new GroupCommit(driver, 7);
			const writes = Array.from({ length: 50 }, (_, i) =>
				commits.write("UPDATE items SET n = ? WHERE id = ?", [1000 + i, "a10"])
			);
			await Promise.all(writes);
			assert.ok(commits.stats.commits >= 7, "batches of at most 7");
			const [row] = await driver.select<{ n: number }>("SELECT n FROM items WHERE id = ?", ["a10"]);
			assert.equal(Number(row.n), 1049, "the last write asked for is the one that stays");
		});
	});
}
