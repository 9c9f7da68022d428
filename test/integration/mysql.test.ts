/**
 * The embedded node on MariaDB/MySQL instead of SQLite: a fresh database for the suite, the
 * schema made by the migrations (once, even when two nodes start on it together), and the
 * lifecycle, large payloads, idempotency, deadlines, retries and a restart on that database.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestTern, waitFor } from "../helpers/tern.ts";
import { TestDatabase } from "../helpers/mysql.ts";
import { migrations } from "../../migrations/index.ts";
import type { TaskView } from "../../lib/contracts.ts";

describe("embedded node on MySQL", () => {
	let db: TestDatabase;
	let tern: TestTern;

	before(async () => {
		db = await TestDatabase.create("tern_mysql");
	});
	after(async () => {
		await tern?.close();
		await db.drop();
	});

	it("creates the schema by migrations, once, when two nodes start on a fresh database together", async () => {
		// Count the runs of each migration over both nodes (a loser of a race would run it again,
		// fail on the existing indexes, and only the ledger's primary key would hide it).
		const runs = new Map<string, number>();
		const originals = migrations.map(m => m.up);
		for (const m of migrations) {
			const up = m.up;
			m.up = qi => {
				runs.set(m.name, (runs.get(m.name) ?? 0) + 1);
				return up(qi);
			};
		}
		// Two URIs for one database: each node gets its own connection pool (the process shares
		// one pool per URI), so the two really migrate side by side, as two processes would.
		let first: TestTern, second: TestTern;
		try {
			[first, second] = await Promise.all([
				TestTern.start({ dbUri: db.uri }),
				TestTern.start({ dbUri: db.uri.replace(/^mysql:/, "mariadb:") })
			]);
		} finally {
			migrations.forEach((m, i) => (m.up = originals[i]));
		}
		tern = first;
		try {
			assert.deepEqual(
				Object.fromEntries(runs),
				Object.fromEntries(migrations.map(m => [m.name, 1])),
				"each migration ran once over both nodes"
			);
			const ledger = await db.query<{ name: string }>("SELECT name FROM tern_migrations ORDER BY name");
			assert.deepEqual(
				ledger.map(r => r.name),
				migrations.map(m => m.name),
				"each migration is in the ledger exactly once"
			);
			const tables = await db.query<{ t: string }>(
				"SELECT table_name AS t FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name",
				[db.name]
			);
			assert.deepEqual(tables.map(r => r.t).sort(), [
				"job_fires",
				"jobs",
				"scripts",
				"task_logs",
				"tasks",
				"terminals",
				"tern_migrations",
				"users"
			]);
			const admins = await db.query<{ n: number }>("SELECT COUNT(*) AS n FROM users WHERE username = 'admin'");
			assert.equal(Number(admins[0].n), 1, "one admin, though both nodes started on an empty table");
			// Payloads and outputs up to 256 KiB need more than MySQL's 64 KiB TEXT.
			const columns = await db.query<{ c: string; t: string }>(
				"SELECT column_name AS c, data_type AS t FROM information_schema.columns WHERE table_schema = ? AND table_name = 'tasks' AND column_name IN ('payload', 'output') ORDER BY column_name",
				[db.name]
			);
			assert.deepEqual(columns, [
				{ c: "output", t: "mediumtext" },
				{ c: "payload", t: "mediumtext" }
			]);
			// Both nodes work on the schema: each logs in and lists.
			assert.equal((await second.api("GET", "/api/terminals")).status, 200);
			assert.equal((await first.api("GET", "/api/terminals")).status, 200);
		} finally {
			await second.close();
		}
	});

	it("follows submit → push → ack → result to COMPLETED", async () => {
		const token = await tern.registerTerminal("my-1");
		const terminal = await tern.connectTerminal("my-1", token);
		const taskId = await tern.submit({ terminalId: "my-1", type: "echo", payload: { n: 1 } });
		const task = await terminal.nextTask();
		assert.equal(task.taskId, taskId);
		assert.equal(task.attempt, 1);
		assert.deepEqual(task.payload, { n: 1 });
		assert.equal((await tern.query(taskId)).status, "DELIVERED");
		assert.equal((await terminal.ack(task)).status, "PROCESSING");
		assert.equal((await tern.query(taskId)).status, "PROCESSING");
		const reply = await terminal.result(task, "success", { echoed: 1 }, { exitCode: 0 });
		assert.equal(reply.status, "COMPLETED");
		const done = await tern.query(taskId);
		assert.equal(done.status, "COMPLETED");
		assert.deepEqual(done.data, { echoed: 1 });
		assert.equal(done.exitCode, 0);
		assert.ok(done.deliveredAt && done.startedAt && done.finishedAt);
		assert.ok(Date.parse(done.finishedAt) >= Date.parse(done.deliveredAt));
		terminal.close();
	});

	it("round-trips a 200 KiB payload and a 200 KiB output", async () => {
		const token = await tern.registerTerminal("my-big");
		const terminal = await tern.connectTerminal("my-big", token);
		// Varied, multi-byte text: a truncated or re-encoded column would not compare equal.
		const chunk = "tern-é-✓-" + "0123456789abcdef".repeat(4);
		const big = chunk.repeat(Math.ceil((200 * 1024) / Buffer.byteLength(chunk))).slice(0, 200 * 1024);
		const payload = { big, n: 7 };
		assert.ok(Buffer.byteLength(JSON.stringify(payload)) > 200 * 1024);
		const taskId = await tern.submit({ terminalId: "my-big", type: "big", payload });
		const task = await terminal.nextTask();
		assert.deepEqual(task.payload, payload);
		await terminal.ack(task);
		await terminal.result(task, "success", { echo: big });
		const view = (await tern.api<TaskView>("GET", `/api/tasks/${taskId}`)).body;
		assert.equal(view.status, "COMPLETED");
		assert.deepEqual(view.payload, payload);
		assert.deepEqual(view.data, { echo: big });
		const stored = await db.query<{ n: number }>("SELECT LENGTH(payload) AS n FROM tasks WHERE id = ?", [taskId]);
		assert.equal(Number(stored[0].n), Buffer.byteLength(JSON.stringify(payload)));
		terminal.close();
	});

	it("maps one idempotency key to one task, also when submits race", async () => {
		await tern.registerTerminal("my-idem");
		const body = { terminalId: "my-idem", type: "t", idempotencyKey: "my-order-42" };
		const first = await tern.api("POST", "/api/task/submit", body);
		const second = await tern.api("POST", "/api/task/submit", body);
		assert.equal(first.status, 201);
		assert.equal(second.status, 201);
		assert.equal(second.body.taskId, first.body.taskId);
		assert.equal(second.body.duplicate, true);

		const racing = { ...body, idempotencyKey: "my-order-43" };
		const replies = await Promise.all(Array.from({ length: 8 }, () => tern.api("POST", "/api/task/submit", racing)));
		for (const reply of replies) assert.equal(reply.status, 201, JSON.stringify(reply.body));
		assert.equal(new Set(replies.map(r => r.body.taskId)).size, 1, "every racing submit names one task");
		assert.equal(replies.filter(r => !r.body.duplicate).length, 1, "exactly one created it");
		const all = (await tern.api("GET", "/api/tasks?terminalId=my-idem")).body;
		assert.equal(all.total, 2);
	});

	it("redelivers a task that is not acknowledged in time and refuses the old attempt with STALE_ATTEMPT", async () => {
		const token = await tern.registerTerminal("my-stale");
		const terminal = await tern.connectTerminal("my-stale", token);
		const taskId = await tern.submit({ terminalId: "my-stale", type: "t", ackTimeout: 0.3 });
		const first = await terminal.nextTask();
		assert.equal(first.attempt, 1);
		const second = await terminal.nextTask();
		assert.equal(second.taskId, taskId);
		assert.equal(second.attempt, 2);
		assert.ok(terminal.cancels.some(c => c.taskId === taskId && c.attempt === 1 && c.reason === "ack-timeout"));

		const stale = await terminal.result(first);
		assert.equal(stale.ok, false);
		assert.equal(stale.error.type, "STALE_ATTEMPT");
		assert.equal((await tern.query(taskId)).status, "DELIVERED");
		await terminal.ack(second);
		assert.equal((await terminal.result(second)).status, "COMPLETED");
		const done = await tern.query(taskId);
		assert.equal(done.status, "COMPLETED");
		assert.equal(done.attempt, 2);
		terminal.close();
	});

	it("times out a task never acknowledged after the last delivery", async () => {
		const token = await tern.registerTerminal("my-ackto");
		const terminal = await tern.connectTerminal("my-ackto", token);
		const taskId = await tern.submit({ terminalId: "my-ackto", type: "t", ackTimeout: 0.2 });
		const timedOut = await tern.waitForStatus(taskId, "TIMEOUT");
		assert.deepEqual(
			terminal.tasks.filter(t => t.taskId === taskId).map(t => t.attempt),
			[1, 2, 3]
		);
		assert.match(timedOut.error ?? "", /not acknowledged within 0.2s after 3 deliveries/);
		terminal.close();
	});

	it("retries a failed task with exponential backoff, each time as a new attempt", async () => {
		const token = await tern.registerTerminal("my-retry");
		const terminal = await tern.connectTerminal("my-retry", token);
		const taskId = await tern.submit({
			terminalId: "my-retry",
			type: "flaky",
			maxRetries: 2,
			backoff: { type: "exponential", delay: 100, jitter: 0 }
		});
		const failedAt: number[] = [];
		for (let attempt = 1; attempt <= 3; attempt++) {
			const task = await terminal.nextTask();
			assert.equal(task.attempt, attempt);
			if (failedAt.length > 0) {
				const waited = Date.now() - failedAt[failedAt.length - 1];
				assert.ok(waited >= 100 * 2 ** (attempt - 2) - 5, `attempt ${attempt} waited ${waited} ms`);
			}
			await terminal.ack(task);
			if (attempt < 3) await terminal.result(task, "failed", null, { error: `failure ${attempt}` });
			else await terminal.result(task, "success", "third time");
			failedAt.push(Date.now());
		}
		const done = await tern.waitForStatus(taskId, "COMPLETED");
		assert.equal(done.data, "third time");
		assert.equal(done.attempt, 3);
		const view = (await tern.api<TaskView>("GET", `/api/tasks/${taskId}`)).body;
		assert.equal(view.retries, 2);
		terminal.close();
	});

	it("loses nothing across a restart: queued, delivered and running tasks and idempotency keys survive", async () => {
		const token = await tern.registerTerminal("my-rs");
		const terminal = await tern.connectTerminal("my-rs", token, { concurrency: 2 });
		const delivered = await tern.submit({ terminalId: "my-rs", type: "delivered", priority: 6 });
		assert.equal((await terminal.nextTask()).taskId, delivered);
		const processing = await tern.submit({ terminalId: "my-rs", type: "processing", timeout: 60 });
		const running = await terminal.nextTask();
		assert.equal(running.taskId, processing);
		assert.equal((await terminal.ack(running)).status, "PROCESSING");
		const runningBefore = (await tern.api<TaskView>("GET", `/api/tasks/${processing}`)).body;
		const p2 = await tern.submit({ terminalId: "my-rs", type: "queued", priority: 2 });
		const p8 = await tern.submit({ terminalId: "my-rs", type: "queued", priority: 8 });
		const p4 = await tern.submit({ terminalId: "my-rs", type: "queued", priority: 4 });
		const keyed = (
			await tern.api("POST", "/api/task/submit", { terminalId: "my-rs", type: "once", idempotencyKey: "my-rs-key" })
		).body.taskId as string;
		const countBefore = (await tern.api("GET", "/api/tasks?pageSize=1")).body.total as number;

		tern = await tern.restart();

		assert.equal((await tern.api("GET", "/api/tasks?pageSize=1")).body.total, countBefore, "no task lost or added");
		for (const id of [p2, p8, p4, keyed]) assert.equal((await tern.query(id)).status, "PENDING");
		const returned = await tern.query(delivered);
		assert.equal(returned.status, "PENDING", "the unacknowledged task went back to the queue");
		assert.equal(returned.attempt, 1);
		const runningAfter = (await tern.api<TaskView>("GET", `/api/tasks/${processing}`)).body;
		assert.equal(runningAfter.status, "PROCESSING");
		assert.equal(runningAfter.deadlineAt, runningBefore.deadlineAt, "its deadline is kept");
		const again = await tern.api("POST", "/api/task/submit", {
			terminalId: "my-rs",
			type: "once",
			idempotencyKey: "my-rs-key"
		});
		assert.equal(again.body.taskId, keyed);
		assert.equal(again.body.duplicate, true);

		const back = await tern.connectTerminal("my-rs", token, { concurrency: 10 });
		await waitFor(
			() => back.tasks.length === 5,
			5000,
			() => `5 tasks (have ${back.tasks.length})`
		);
		assert.deepEqual(
			back.tasks.map(t => t.taskId),
			[p8, delivered, keyed, p4, p2],
			"queue order: priority, then FIFO"
		);
		assert.equal(back.tasks.find(t => t.taskId === delivered)?.attempt, 2);
		for (const task of back.tasks) {
			await back.ack(task);
			assert.equal((await back.result(task)).status, "COMPLETED");
		}
		// The result of the task that was running before the restart is accepted after it.
		assert.equal((await back.result(running, "success", "survived")).status, "COMPLETED");
		for (const id of [delivered, processing, p2, p8, p4, keyed]) assert.equal((await tern.query(id)).status, "COMPLETED");
		back.close();
	});
});
