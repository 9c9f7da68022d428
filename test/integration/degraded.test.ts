/**
 * Degraded mode on MariaDB: the node's only way to its database goes through a TCP proxy that
 * the test cuts (connections refused) or stalls (connections open, nothing answered). While the
 * database is away tasks are still submitted, pushed, acknowledged and finished; the status,
 * the metric and the refusal of a history listing say so; once it is back the journal is
 * replayed and every change is in the database exactly once. And a journal replayed twice (a
 * crash during a replay) changes nothing the second time.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { TestTern, type TestTerminal } from "../helpers/tern.ts";
import { TestDatabase, MYSQL_SERVER } from "../helpers/mysql.ts";
import { TcpProxy } from "../support/tcp-proxy.ts";
import { waitFor } from "../support/wait.ts";
import type { SystemStatus, TaskPush } from "../../lib/contracts.ts";
import { Journal } from "../../lib/journal.ts";
import { emptyCounts, replaySegment, type JournalRecord } from "../../services/dispatcher/replay.ts";
import type { ResilientTaskStore } from "../../services/dispatcher/resilient-store.ts";
import { needs } from "../support/servers.ts";

interface Row {
	id: string;
	status: string;
	attempt: number;
	history: string;
}

describe("degraded mode: the database goes away and comes back", { skip: needs("mariadb") }, () => {
	let db: TestDatabase;
	let proxy: TcpProxy;
	let tern: TestTern;
	let terminal: TestTerminal;

	before(async () => {
		db = await TestDatabase.create("tern_degraded");
		const server = new URL(MYSQL_SERVER);
		proxy = await TcpProxy.start(server.hostname, Number(server.port || 3306));
		tern = await TestTern.start({
			dbUri: `mysql://${server.username || "root"}@127.0.0.1:${proxy.port}/${db.name}`,
			env: { TERN_DB_DEADLINE_MS: "1000" },
			settings: { dispatcher: { dbProbeInterval: 100 } }
		});
		terminal = await tern.connectTerminal("edge-1", await tern.registerTerminal("edge-1"));
	});

	after(async () => {
		terminal?.close();
		await tern?.close();
		await proxy?.close();
		await db?.drop();
	});

	const status = async () => (await tern.api<SystemStatus>("GET", "/api/system/status")).body;

	/** Runs each task pushed to the terminal: ack, then a success. */
	async function run(count: number): Promise<TaskPush[]> {
		const done: TaskPush[] = [];
		for (let i = 0; i < count; i++) {
			const task = await terminal.nextTask(10_000);
			assert.equal((await terminal.ack(task)).ok, true, `ack of ${task.taskId}`);
			assert.equal((await terminal.result(task, "success", { n: i })).ok, true, `result of ${task.taskId}`);
			done.push(task);
		}
		return done;
	}

	async function rows(ids: string[]): Promise<Row[]> {
		return db.query<Row>("SELECT id, status, attempt, history FROM tasks WHERE id IN (?) ORDER BY id", [ids]);
	}

	function completions(row: Row): number {
		return row.history.split("\n").filter(line => line.includes('"s":"COMPLETED"')).length;
	}

	for (const fault of ["refuses connections", "stops answering"] as const) {
		it(`keeps tasks going while the database ${fault}, then replays them exactly once`, async () => {
			assert.equal((await status()).degraded, false);
			const before = await tern.submit({ terminalId: "edge-1", type: "echo", payload: { before: true } });
			await run(1);
			await tern.waitForStatus(before, "COMPLETED");

			if (fault === "refuses connections") proxy.cut();
			else proxy.stall();
			const ids: string[] = [];
			for (let i = 0; i < 10; i++)
				ids.push(
					await tern.submit({ terminalId: "edge-1", type: "echo", payload: { i }, idempotencyKey: `${fault}-${i}` })
				);
			await run(10);
			for (const id of ids) await tern.waitForStatus(id, "COMPLETED");

			const degraded = await status();
			assert.equal(degraded.degraded, true);
			assert.ok(degraded.degradedReason, "a reason is given");
			const [storage] = degraded.storage;
			assert.equal(storage.degraded, true);
			// Each task: its insert (delivered at once to the online terminal), its ack and its result.
			assert.ok(storage.journalled >= 30, `every change journalled (${storage.journalled})`);
			const metrics = await (await fetch(`${tern.url}/metrics`)).text();
			assert.match(metrics, /^tern_storage_degraded(\{[^}]*\})? 1$/m);

			// What waits for the database says so, by type.
			const list = await tern.api("GET", "/api/tasks");
			assert.equal(list.status, 503);
			assert.equal(list.body.type, "STORAGE_DEGRADED");
			// A repeated submit is still recognised by its key.
			const again = await tern.api("POST", "/api/task/submit", {
				terminalId: "edge-1",
				type: "echo",
				payload: { i: 3 },
				idempotencyKey: `${fault}-3`
			});
			assert.equal(again.body.taskId, ids[3]);

			proxy.restore();
			await waitFor(
				async () => !(await status()).degraded,
				15_000,
				() => "degraded mode to end"
			);
			const back = (await status()).storage[0];
			assert.equal(back.lastReplay?.records, back.journalled);
			assert.equal(back.lastReplay?.conflicts, 0);

			const written = await rows(ids);
			assert.equal(written.length, 10, "every task submitted while degraded is in the database");
			for (const row of written) {
				assert.equal(row.status, "COMPLETED", row.id);
				assert.equal(row.attempt, 1, row.id);
				assert.equal(completions(row), 1, `${row.id} completed once: ${row.history}`);
			}
			// The listing works again and shows them.
			const listed = await tern.api<{ total: number }>("GET", "/api/tasks?status=COMPLETED&pageSize=100");
			assert.equal(listed.status, 200);
			assert.ok(listed.body.total >= 11);
		});
	}
});

describe("the journal's replay", () => {
	let tern: TestTern;
	let dir: string;
	before(async () => {
		tern = await TestTern.start();
		dir = mkdtempSync(join(tmpdir(), "tern-replay-"));
	});
	after(async () => {
		await tern?.close();
		rmSync(dir, { recursive: true, force: true });
	});

	it("lands each change once, however often it is replayed (a crash in the middle of a replay)", async () => {
		const service = tern.broker.getLocalService("dispatcher") as unknown as { store: ResilientTaskStore };
		const journal = await Journal.open<JournalRecord>(dir);
		await tern.registerTerminal("nobody");
		const taskId = await tern.submit({ terminalId: "nobody", type: "echo", payload: {} });
		const row = (await service.store.get(taskId))!;
		const records: JournalRecord[] = [
			{ op: "insert", rows: [{ ...row, id: `${taskId}-copy`, history: null }] },
			{
				op: "change",
				id: taskId,
				expect: { status: "PENDING", attempt: 0 },
				changes: { status: "DELIVERED", attempt: 1, terminalId: "nobody", updatedAt: Date.now() + 1 }
			},
			{
				op: "change",
				id: taskId,
				expect: { status: "DELIVERED", attempt: 1 },
				changes: { status: "PROCESSING", updatedAt: Date.now() + 2 }
			},
			{
				op: "change",
				id: taskId,
				expect: { status: "PROCESSING", attempt: 1 },
				changes: { status: "COMPLETED", progress: 100, updatedAt: Date.now() + 3 }
			},
			{ op: "log", taskId, attempt: 1, stream: "stdout", text: "hello", at: Date.now(), maxLines: 100 }
		];
		for (const record of records) await journal.write(record);
		await journal.close();
		const [segment] = await journal.segments();
		const file = join(dir, readdirSync(dir)[0]);
		const copy = readFileSync(file);

		const first = emptyCounts();
		await replaySegment(journal, segment, service.store.driver, first);
		assert.deepEqual([first.records, first.applied, first.skipped, first.conflicts], [5, 5, 0, 0]);
		assert.deepEqual(await journal.segments(), [], "a replayed segment is removed");

		writeFileSync(file, copy);
		const second = emptyCounts();
		await replaySegment(journal, segment, service.store.driver, second);
		assert.deepEqual([second.records, second.applied, second.skipped], [5, 0, 5]);

		const task = await tern.api("GET", `/api/tasks/${taskId}`);
		assert.equal(task.body.status, "COMPLETED");
		assert.deepEqual(
			task.body.history.map((h: { status: string }) => h.status),
			["PENDING", "DELIVERED", "PROCESSING", "COMPLETED"]
		);
		const logs = await tern.api("GET", `/api/tasks/${taskId}/logs`);
		assert.equal(logs.body.rows?.length ?? logs.body.lines?.length, 1, JSON.stringify(logs.body));
		assert.equal((await tern.api("GET", `/api/tasks/${taskId}-copy`)).body.status, "PENDING");
	});
});
