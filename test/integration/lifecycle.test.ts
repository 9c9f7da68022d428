/**
 * The task lifecycle end to end, once on each database Tern runs on: SQLite (embedded mode) and
 * MariaDB/MySQL (cluster mode; TERN_TEST_MYSQL, default mysql://root@127.0.0.1:3306). A real
 * Tern on a real port, terminals on socket.io-client, REST through fetch: every transition of
 * the design's state machine is driven here, and what a database could get wrong (large
 * payloads, racing idempotency keys, a restart) is checked on each. MariaDB's schema (made by
 * migrations, once, when two nodes start together) closes the file.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestTern, type TernOptions } from "../helpers/tern.ts";
import { TestDatabase } from "../helpers/mysql.ts";
import { migrations } from "../../migrations/index.ts";
import type { TaskView } from "../../lib/contracts.ts";
import { needs } from "../support/servers.ts";

/** A kind of database: each node it starts gets a fresh database, dropped by close(). */
interface Backend {
	name: string;
	start(options?: TernOptions): Promise<TestTern>;
	/** Bytes a task's column holds, read past Tern (where a column has a width to cut at). */
	storedBytes?(tern: TestTern, taskId: string, column: "payload" | "output"): Promise<number>;
	close(): Promise<void>;
}

const sqlite: Backend = {
	name: "SQLite",
	start: options => TestTern.start(options),
	close: async () => {}
};

function mariadb(): Backend {
	const databases: TestDatabase[] = [];
	return {
		name: "MariaDB",
		async start(options = {}) {
			const db = await TestDatabase.create("tern_life");
			databases.push(db);
			return TestTern.start({ ...options, dbUri: db.uri });
		},
		async storedBytes(tern, taskId, column) {
			const db = databases.find(d => d.uri === tern.dbUri)!;
			const rows = await db.query<{ n: number }>(`SELECT LENGTH(${column}) AS n FROM tasks WHERE id = ?`, [taskId]);
			return Number(rows[0].n);
		},
		async close() {
			for (const db of databases.splice(0)) await db.drop();
		}
	};
}

for (const backend of [sqlite, mariadb()]) {
	describe(`task lifecycle over socket.io on ${backend.name}`, { skip: backend.name === "MariaDB" && needs("mariadb") }, () => {
		let tern: TestTern;

		before(async () => {
			tern = await backend.start();
		});
		after(async () => {
			await tern?.close();
			await backend.close();
		});

		it("pushes at once to an online terminal and follows ack and result to COMPLETED", async () => {
			const token = await tern.registerTerminal("life-1");
			const terminal = await tern.connectTerminal("life-1", token);
			const taskId = await tern.submit({ terminalId: "life-1", type: "echo", payload: { n: 1 } });

			const task = await terminal.nextTask();
			assert.equal(task.taskId, taskId);
			assert.equal(task.attempt, 1);
			assert.deepEqual(task.payload, { n: 1 });
			assert.equal(task.timeout, 300);
			assert.equal((await tern.query(taskId)).status, "DELIVERED");

			const ack = await terminal.ack(task);
			assert.equal(ack.ok, true);
			assert.equal(ack.status, "PROCESSING");
			assert.equal((await tern.query(taskId)).status, "PROCESSING");

			const reply = await terminal.result(task, "success", { echoed: 1 }, { exitCode: 0 });
			assert.equal(reply.ok, true);
			assert.equal(reply.status, "COMPLETED");
			const done = await tern.query(taskId);
			assert.equal(done.status, "COMPLETED");
			assert.deepEqual(done.data, { echoed: 1 });
			assert.equal(done.exitCode, 0);
			assert.ok(done.deliveredAt && done.startedAt && done.finishedAt);
			assert.ok(Date.parse(done.finishedAt) >= Date.parse(done.deliveredAt));
			terminal.close();
		});

		it("records a failed result as FAILED with its error", async () => {
			const token = await tern.registerTerminal("life-2");
			const terminal = await tern.connectTerminal("life-2", token);
			const taskId = await tern.submit({ terminalId: "life-2", type: "boom" });
			const task = await terminal.nextTask();
			await terminal.ack(task);
			await terminal.result(task, "failed", null, { error: "exploded", exitCode: 3 });
			const failed = await tern.query(taskId);
			assert.equal(failed.status, "FAILED");
			assert.equal(failed.error, "exploded");
			assert.equal(failed.exitCode, 3);
			terminal.close();
		});

		it("queues for an offline terminal and drains on connect by priority, FIFO within a priority", async () => {
			const token = await tern.registerTerminal("life-queue");
			const low1 = await tern.submit({ terminalId: "life-queue", type: "t", priority: 1 });
			const high = await tern.submit({ terminalId: "life-queue", type: "t", priority: 9 });
			const mid1 = await tern.submit({ terminalId: "life-queue", type: "t", priority: 5 });
			const mid2 = await tern.submit({ terminalId: "life-queue", type: "t", priority: 5 });
			const low2 = await tern.submit({ terminalId: "life-queue", type: "t", priority: 1 });
			for (const id of [low1, high, mid1, mid2, low2]) assert.equal((await tern.query(id)).status, "PENDING");

			const terminal = await tern.connectTerminal("life-queue", token, { concurrency: 10 });
			await terminal.until(() => terminal.tasks.length === 5);
			assert.deepEqual(
				terminal.tasks.map(t => t.taskId),
				[high, mid1, mid2, low1, low2]
			);
			terminal.close();
		});

		it("never holds more than the advertised concurrency; the next goes out when one finishes", async () => {
			const token = await tern.registerTerminal("life-conc");
			const terminal = await tern.connectTerminal("life-conc", token, { concurrency: 2 });
			const ids = [];
			for (let i = 0; i < 5; i++) ids.push(await tern.submit({ terminalId: "life-conc", type: "t" }));
			await terminal.until(() => terminal.tasks.length === 2);
			const statuses = await Promise.all(ids.map(async id => (await tern.query(id)).status));
			assert.equal(statuses.filter(s => s === "DELIVERED").length, 2);
			assert.equal(statuses.filter(s => s === "PENDING").length, 3);

			const first = terminal.tasks[0];
			await terminal.ack(first);
			await terminal.result(first);
			await terminal.until(() => terminal.tasks.length === 3);
			assert.equal(terminal.tasks[2].taskId, ids[2]);
			const held = await Promise.all(ids.map(async id => (await tern.query(id)).status));
			assert.equal(held.filter(s => s === "DELIVERED" || s === "PROCESSING").length, 2);
			terminal.close();
		});

		it("refuses a result for a superseded attempt with STALE_ATTEMPT", async () => {
			const token = await tern.registerTerminal("life-stale");
			const terminal = await tern.connectTerminal("life-stale", token);
			const taskId = await tern.submit({ terminalId: "life-stale", type: "t", ackTimeout: 0.3 });
			const first = await terminal.nextTask();
			assert.equal(first.attempt, 1);
			// No ack: the server redelivers as attempt 2.
			const second = await terminal.nextTask();
			assert.equal(second.taskId, taskId);
			assert.equal(second.attempt, 2);
			assert.ok(terminal.cancels.some(c => c.taskId === taskId && c.attempt === 1 && c.reason === "ack-timeout"));

			const stale = await terminal.result(first);
			assert.equal(stale.ok, false);
			assert.equal(stale.error.type, "STALE_ATTEMPT");
			assert.match(stale.error.message, /Attempt 1 .* superseded: the current attempt is 2/);
			assert.equal((await tern.query(taskId)).status, "DELIVERED");

			await terminal.ack(second);
			assert.equal((await terminal.result(second)).status, "COMPLETED");
			const done = await tern.query(taskId);
			assert.equal(done.status, "COMPLETED");
			assert.equal(done.attempt, 2);
			terminal.close();
		});

		it("times out a task that is never acknowledged after the last redelivery", async () => {
			const token = await tern.registerTerminal("life-ackto");
			const terminal = await tern.connectTerminal("life-ackto", token);
			const taskId = await tern.submit({ terminalId: "life-ackto", type: "t", ackTimeout: 0.2 });
			const timedOut = await tern.waitForStatus(taskId, "TIMEOUT");
			assert.equal(terminal.tasks.filter(t => t.taskId === taskId).length, 3, "pushed maxDeliveries times");
			assert.deepEqual(
				terminal.tasks.filter(t => t.taskId === taskId).map(t => t.attempt),
				[1, 2, 3]
			);
			assert.match(timedOut.error ?? "", /not acknowledged within 0.2s after 3 deliveries/);
			terminal.close();
		});

		it("times out a task that runs past its timeout and tells the terminal to stop", async () => {
			const token = await tern.registerTerminal("life-runto");
			const terminal = await tern.connectTerminal("life-runto", token);
			const taskId = await tern.submit({ terminalId: "life-runto", type: "t", timeout: 0.3 });
			const task = await terminal.nextTask();
			await terminal.ack(task);
			const timedOut = await tern.waitForStatus(taskId, "TIMEOUT");
			assert.match(timedOut.error ?? "", /did not finish within its timeout of 0.3s/);
			await terminal.until(() => terminal.cancels.some(c => c.taskId === taskId && c.reason === "timeout"));
			const late = await terminal.result(task);
			assert.equal(late.ok, false);
			assert.equal(late.error.type, "TASK_FINISHED");
			terminal.close();
		});

		it("retries a failed task with backoff up to maxRetries, each time as a new attempt", async () => {
			const token = await tern.registerTerminal("life-retry");
			const terminal = await tern.connectTerminal("life-retry", token);
			const taskId = await tern.submit({
				terminalId: "life-retry",
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
				await terminal.result(task, "failed", null, { error: `failure ${attempt}` });
				failedAt.push(Date.now());
			}
			const final = await tern.waitForStatus(taskId, "FAILED");
			assert.equal(final.error, "failure 3");
			const view = (await tern.api("GET", `/api/tasks/${taskId}`)).body;
			assert.equal(view.retries, 2);
			terminal.close();
		});

		it("retries then completes: a success on a later attempt ends COMPLETED", async () => {
			const token = await tern.registerTerminal("life-retry-ok");
			const terminal = await tern.connectTerminal("life-retry-ok", token);
			const taskId = await tern.submit({ terminalId: "life-retry-ok", type: "flaky", maxRetries: 3 });
			const first = await terminal.nextTask();
			await terminal.ack(first);
			await terminal.result(first, "failed", null, { error: "once" });
			const second = await terminal.nextTask();
			assert.equal(second.attempt, 2);
			await terminal.ack(second);
			await terminal.result(second, "success", "fine");
			const done = await tern.waitForStatus(taskId, "COMPLETED");
			assert.equal(done.data, "fine");
			assert.equal(done.attempt, 2);
			assert.equal((await tern.api<TaskView>("GET", `/api/tasks/${taskId}`)).body.retries, 1);
			terminal.close();
		});

		it("cancels a task in PENDING and in PROCESSING; the terminal is told; a final task cannot be cancelled", async () => {
			const token = await tern.registerTerminal("life-cancel");
			const pending = await tern.submit({ terminalId: "life-cancel", type: "t" });
			const cancelled = await tern.api("POST", `/api/tasks/${pending}/cancel`);
			assert.equal(cancelled.status, 200);
			assert.equal(cancelled.body.status, "CANCELLED");

			const terminal = await tern.connectTerminal("life-cancel", token);
			const running = await tern.submit({ terminalId: "life-cancel", type: "t" });
			const task = await terminal.nextTask();
			assert.equal(task.taskId, running, "the cancelled task is never pushed");
			await terminal.ack(task);
			assert.equal((await tern.api("POST", `/api/tasks/${running}/cancel`)).body.status, "CANCELLED");
			await terminal.until(() => terminal.cancels.some(c => c.taskId === running && c.reason === "cancelled"));
			const late = await terminal.result(task);
			assert.equal(late.error.type, "TASK_FINISHED");

			const again = await tern.api("POST", `/api/tasks/${running}/cancel`);
			assert.equal(again.status, 409);
			assert.equal(again.body.type, "TASK_FINISHED");
			terminal.close();
		});

		it("expires a task left PENDING past its ttl", async () => {
			await tern.registerTerminal("life-ttl");
			const taskId = await tern.submit({ terminalId: "life-ttl", type: "t", ttl: 0.2 });
			const expired = await tern.waitForStatus(taskId, "EXPIRED");
			assert.match(expired.error ?? "", /ttl/);
		});

		it("returns DELIVERED tasks to PENDING when the connection drops and redelivers on reconnect", async () => {
			const token = await tern.registerTerminal("life-drop");
			const first = await tern.connectTerminal("life-drop", token);
			const taskId = await tern.submit({ terminalId: "life-drop", type: "t" });
			const task = await first.nextTask();
			assert.equal(task.attempt, 1);
			first.close();
			await tern.waitForStatus(taskId, "PENDING");
			await tern.waitForTerminal("life-drop", "offline");

			const second = await tern.connectTerminal("life-drop", token);
			const again = await second.nextTask();
			assert.equal(again.taskId, taskId);
			assert.equal(again.attempt, 2);
			second.close();
		});

		it("keeps a PROCESSING task running across a reconnect and accepts its result afterwards", async () => {
			const token = await tern.registerTerminal("life-keep");
			const first = await tern.connectTerminal("life-keep", token);
			const taskId = await tern.submit({ terminalId: "life-keep", type: "t" });
			const task = await first.nextTask();
			await first.ack(task);
			first.close();
			await tern.waitForTerminal("life-keep", "offline");
			assert.equal((await tern.query(taskId)).status, "PROCESSING");

			const second = await tern.connectTerminal("life-keep", token);
			const reply = await second.result(task, "success", "after reconnect");
			assert.equal(reply.ok, true);
			const done = await tern.query(taskId);
			assert.equal(done.status, "COMPLETED");
			assert.equal(done.data, "after reconnect");
			assert.equal(second.tasks.length, 0, "nothing was redelivered");
			second.close();
		});

		it("refuses an ack or result from a terminal that does not hold the task", async () => {
			const ownerToken = await tern.registerTerminal("life-owner");
			const otherToken = await tern.registerTerminal("life-other");
			const owner = await tern.connectTerminal("life-owner", ownerToken);
			const other = await tern.connectTerminal("life-other", otherToken);
			const taskId = await tern.submit({ terminalId: "life-owner", type: "t" });
			const task = await owner.nextTask();

			const ack = await other.ack(task);
			assert.equal(ack.ok, false);
			assert.equal(ack.error.type, "TASK_NOT_YOURS");
			const result = await other.result(task);
			assert.equal(result.error.type, "TASK_NOT_YOURS");
			assert.equal((await tern.query(taskId)).status, "DELIVERED");
			assert.ok(
				other.errors.some(e => e.type === "TASK_NOT_YOURS" && e.event === "ack"),
				"an error event is emitted too"
			);
			owner.close();
			other.close();
		});

		it("answers socket messages that make no sense with an error event and changes nothing", async () => {
			const token = await tern.registerTerminal("life-bad");
			const terminal = await tern.connectTerminal("life-bad", token);
			const missing = await terminal.request("ack", { taskId: "no-such-task", attempt: 1 });
			assert.equal(missing.error.type, "TASK_NOT_FOUND");
			const invalid = await terminal.request("result", { taskId: "x", attempt: "first", status: "maybe" });
			assert.equal(invalid.error.type, "VALIDATION_ERROR");
			assert.match(invalid.error.message, /attempt/);
			assert.match(invalid.error.message, /status/);
			const notObject = await terminal.request("ack", "hello");
			assert.equal(notObject.error.type, "BAD_REQUEST");
			terminal.socket.emit("launch-missiles", {});
			await terminal.until(() => terminal.errors.some(e => e.event === "launch-missiles"));
			const heartbeat = await terminal.request("heartbeat");
			assert.equal(heartbeat.ok, true);
			terminal.close();
		});

		it("refuses connections with a missing, forged or user token", async () => {
			await assert.rejects(tern.connectTerminal("nobody", ""), (err: Error & { data?: { type: string } }) => {
				assert.equal(err.data?.type, "UNAUTHORIZED");
				return true;
			});
			const forged = "eyJhbGciOiJIUzI1NiJ9.eyJraW5kIjoidGVybWluYWwiLCJrdiI6MSwic3ViIjoibGlmZS0xIn0.c2lnbmF0dXJl";
			await assert.rejects(tern.connectTerminal("life-1", forged), (err: Error & { data?: { type: string } }) => {
				assert.equal(err.data?.type, "INVALID_TOKEN");
				return true;
			});
			await assert.rejects(tern.connectTerminal("admin", tern.adminToken), (err: Error & { data?: { type: string } }) => {
				assert.equal(err.data?.type, "FORBIDDEN");
				return true;
			});
		});

		it("maps one idempotency key to one task within the window, also when submits race", async () => {
			await tern.registerTerminal("life-idem");
			const body = { terminalId: "life-idem", type: "t", idempotencyKey: "order-42" };
			const first = await tern.api("POST", "/api/task/submit", body);
			const second = await tern.api("POST", "/api/task/submit", body);
			assert.equal(first.status, 201);
			assert.equal(second.status, 201);
			assert.equal(second.body.taskId, first.body.taskId);
			assert.equal(second.body.duplicate, true);

			const racing = { ...body, idempotencyKey: "order-43" };
			const replies = await Promise.all(Array.from({ length: 8 }, () => tern.api("POST", "/api/task/submit", racing)));
			for (const reply of replies) assert.equal(reply.status, 201, JSON.stringify(reply.body));
			assert.equal(new Set(replies.map(r => r.body.taskId)).size, 1, "every racing submit names one task");
			assert.equal(replies.filter(r => !r.body.duplicate).length, 1, "exactly one created it");
			const all = (await tern.api("GET", "/api/tasks?terminalId=life-idem")).body;
			assert.equal(all.total, 2);
		});

		it("round-trips a 200 KiB payload and a 200 KiB output", async () => {
			const token = await tern.registerTerminal("life-big");
			const terminal = await tern.connectTerminal("life-big", token);
			// Varied, multi-byte text: a truncated or re-encoded column would not compare equal.
			const chunk = "tern-é-✓-" + "0123456789abcdef".repeat(4);
			const big = chunk.repeat(Math.ceil((200 * 1024) / Buffer.byteLength(chunk))).slice(0, 200 * 1024);
			const payload = { big, n: 7 };
			assert.ok(Buffer.byteLength(JSON.stringify(payload)) > 200 * 1024);
			const taskId = await tern.submit({ terminalId: "life-big", type: "big", payload });
			const task = await terminal.nextTask();
			assert.deepEqual(task.payload, payload);
			await terminal.ack(task);
			await terminal.result(task, "success", { echo: big });
			const view = (await tern.api<TaskView>("GET", `/api/tasks/${taskId}`)).body;
			assert.equal(view.status, "COMPLETED");
			assert.deepEqual(view.payload, payload);
			assert.deepEqual(view.data, { echo: big });
			if (backend.storedBytes)
				assert.equal(await backend.storedBytes(tern, taskId, "payload"), Buffer.byteLength(JSON.stringify(payload)));
			terminal.close();
		});

		it("loses nothing across a restart: queued, delivered and running tasks and idempotency keys survive", async () => {
			const token = await tern.registerTerminal("life-rs");
			const terminal = await tern.connectTerminal("life-rs", token, { concurrency: 2 });
			const delivered = await tern.submit({ terminalId: "life-rs", type: "delivered", priority: 6 });
			assert.equal((await terminal.nextTask()).taskId, delivered);
			const processing = await tern.submit({ terminalId: "life-rs", type: "processing", timeout: 60 });
			const running = await terminal.nextTask();
			assert.equal(running.taskId, processing);
			assert.equal((await terminal.ack(running)).status, "PROCESSING");
			const runningBefore = (await tern.api<TaskView>("GET", `/api/tasks/${processing}`)).body;
			const p2 = await tern.submit({ terminalId: "life-rs", type: "queued", priority: 2 });
			const p8 = await tern.submit({ terminalId: "life-rs", type: "queued", priority: 8 });
			const p4 = await tern.submit({ terminalId: "life-rs", type: "queued", priority: 4 });
			const keyed = (
				await tern.api("POST", "/api/task/submit", { terminalId: "life-rs", type: "once", idempotencyKey: "life-rs-key" })
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
				terminalId: "life-rs",
				type: "once",
				idempotencyKey: "life-rs-key"
			});
			assert.equal(again.body.taskId, keyed);
			assert.equal(again.body.duplicate, true);

			const back = await tern.connectTerminal("life-rs", token, { concurrency: 10 });
			await back.until(
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

		it("drops a silent terminal after the heartbeat timeout and keeps a beating one", async () => {
			const quiet = await backend.start({ settings: { gateway: { heartbeatTimeout: 400 } } });
			try {
				const silentToken = await quiet.registerTerminal("silent");
				const beatingToken = await quiet.registerTerminal("beating");
				const silent = await quiet.connectTerminal("silent", silentToken);
				const beating = await quiet.connectTerminal("beating", beatingToken);
				const timer = setInterval(() => beating.socket.emit("heartbeat"), 100);
				try {
					await quiet.waitForTerminal("silent", "offline", 3000);
					assert.equal((await quiet.api("GET", "/api/terminals/beating")).body.status, "online");
					const view = (await quiet.api("GET", "/api/terminals/silent")).body;
					assert.ok(view.lastActiveAt, "lastActiveAt is kept");
					assert.equal(silent.socket.connected, false);
				} finally {
					clearInterval(timer);
				}
			} finally {
				await quiet.close();
			}
		});
	});
}

describe("MariaDB schema", { skip: needs("mariadb") }, () => {
	let db: TestDatabase;

	before(async () => {
		db = await TestDatabase.create("tern_schema");
	});
	after(() => db.drop());

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
				"alert_channels",
				"alert_notifications",
				"alert_rules",
				"alerts",
				"api_tokens",
				"audit_log",
				"job_fires",
				"jobs",
				"login_failures",
				"node_leases",
				"revoked_tokens",
				"runtime_settings",
				"scripts",
				"silences",
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
			await first.close();
		}
	});
});
