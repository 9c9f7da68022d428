/**
 * Durability: the whole process stops and a new one starts on the same data dir. Queued tasks
 * stay queued, a delivered-but-unacknowledged task goes back to the queue, a running task keeps
 * its deadline, and users, terminal credentials and idempotency keys all survive.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ADMIN_PASSWORD, TestTern } from "../helpers/tern.ts";
import type { TaskView } from "../../lib/contracts.ts";

/**
 * Long enough to outlive the setup after the ack plus a restart (a node takes over a second to
 * start), short enough to wait for.
 */
const PROCESSING_TIMEOUT_S = 5;

describe("durability across a restart", () => {
	let tern: TestTern;
	let dataDir: string;
	let secretBefore: string;
	let oldAdminToken: string;
	let terminalToken: string;
	/** Queued for the offline terminal, by priority. */
	const pending: Record<"p2" | "p8" | "p4", string> = { p2: "", p8: "", p4: "" };
	let delivered: string;
	let processing: string;
	let processingBefore: TaskView;
	let idempotent: string;
	let stoppedAt: number;

	async function view(taskId: string): Promise<TaskView> {
		return (await tern.api<TaskView>("GET", `/api/tasks/${taskId}`)).body;
	}

	before(async () => {
		tern = await TestTern.start({ keep: true });
		dataDir = tern.dataDir;
		secretBefore = readFileSync(join(dataDir, "jwt-secret"), "utf8");
		oldAdminToken = tern.adminToken;

		terminalToken = await tern.registerTerminal("rs-1");
		const terminal = await tern.connectTerminal("rs-1", terminalToken, { concurrency: 2 });
		// Two slots: one task left DELIVERED, one acknowledged and PROCESSING; the rest must queue.
		delivered = await tern.submit({ terminalId: "rs-1", type: "delivered", priority: 6 });
		assert.equal((await terminal.nextTask()).taskId, delivered);
		processing = await tern.submit({ terminalId: "rs-1", type: "processing", timeout: PROCESSING_TIMEOUT_S });
		const running = await terminal.nextTask();
		assert.equal(running.taskId, processing);
		assert.equal((await terminal.ack(running)).status, "PROCESSING");
		processingBefore = await view(processing);

		pending.p2 = await tern.submit({ terminalId: "rs-1", type: "queued", priority: 2 });
		pending.p8 = await tern.submit({ terminalId: "rs-1", type: "queued", priority: 8 });
		pending.p4 = await tern.submit({ terminalId: "rs-1", type: "queued", priority: 4 });

		await tern.registerTerminal("rs-idem");
		idempotent = await tern.submit({ terminalId: "rs-idem", type: "once", idempotencyKey: "restart-key-1" });
		const user = await tern.api("POST", "/api/users", {
			username: "rs-operator",
			password: "operator-password",
			role: "operator"
		});
		assert.equal(user.status, 201);

		for (const id of Object.values(pending)) assert.equal((await tern.query(id)).status, "PENDING");
		assert.equal((await tern.query(delivered)).status, "DELIVERED");
		assert.equal((await tern.query(processing)).status, "PROCESSING");
		assert.equal(terminal.tasks.length, 2);

		stoppedAt = Date.now();
		tern = await tern.restart();
	});

	after(async () => {
		await tern.close();
		rmSync(dataDir, { recursive: true, force: true });
	});

	it("comes back with every task as it was, the unacknowledged one returned to the queue", async () => {
		assert.equal(tern.dataDir, dataDir);
		for (const id of Object.values(pending)) {
			const v = await tern.query(id);
			assert.equal(v.status, "PENDING");
			assert.equal(v.attempt, 0);
		}
		const returned = await tern.query(delivered);
		assert.equal(returned.status, "PENDING");
		assert.equal(returned.attempt, 1, "the attempt it was delivered as is kept");

		const running = await view(processing);
		assert.equal(running.status, "PROCESSING", "a running task keeps running across the restart");
		assert.equal(running.attempt, 1);
		assert.equal(running.deadlineAt, processingBefore.deadlineAt, "its deadline is the one set at ack");
		assert.equal(running.startedAt, processingBefore.startedAt);
		assert.equal((await tern.api("GET", "/api/terminals/rs-1")).body.status, "offline");
	});

	it("times the running task out at its original deadline, not later and not earlier", async () => {
		const deadline = Date.parse(processingBefore.deadlineAt!);
		assert.equal(deadline - Date.parse(processingBefore.startedAt!), PROCESSING_TIMEOUT_S * 1000);
		const timedOut = await tern.waitForStatus(processing, "TIMEOUT", PROCESSING_TIMEOUT_S * 1000 + 5000);
		const observedAt = Date.now();
		assert.ok(observedAt >= deadline, `TIMEOUT seen ${deadline - observedAt} ms before the deadline`);
		const finishedAt = Date.parse(timedOut.finishedAt!);
		assert.ok(finishedAt >= deadline, `finished ${deadline - finishedAt} ms before the deadline`);
		// The clock kept counting through the restart: had it started again when the new node
		// came up, the timeout would fall a whole timeout after the old node was stopped. (The
		// setup done after the ack puts the original deadline well before that.)
		assert.ok(
			finishedAt < stoppedAt + PROCESSING_TIMEOUT_S * 1000,
			`finished ${finishedAt - deadline} ms after the deadline, ${finishedAt - stoppedAt} ms after the stop`
		);
		assert.match(timedOut.error ?? "", new RegExp(`did not finish within its timeout of ${PROCESSING_TIMEOUT_S}s`));
	});

	it("drains the queue in priority order when the terminal reconnects with its old token, the returned task as attempt 2", async () => {
		const terminal = await tern.connectTerminal("rs-1", terminalToken, { concurrency: 10 });
		await terminal.until(
			() => terminal.tasks.length === 4,
			5000,
			() => `4 tasks (have ${terminal.tasks.length})`
		);
		assert.deepEqual(
			terminal.tasks.map(t => t.taskId),
			[pending.p8, delivered, pending.p4, pending.p2]
		);
		assert.deepEqual(
			terminal.tasks.map(t => t.attempt),
			[1, 2, 1, 1]
		);
		assert.ok(!terminal.tasks.some(t => t.taskId === processing), "the timed-out task is not sent again");

		// The redelivered task is held as attempt 2 and completes as such.
		const again = terminal.tasks[1];
		assert.equal((await terminal.ack(again)).status, "PROCESSING");
		const done = await terminal.result(again, "success", "after restart");
		assert.equal(done.status, "COMPLETED");
		assert.equal((await tern.query(delivered)).attempt, 2);
		terminal.close();
	});

	it("keeps users, the admin password, the JWT secret and tokens issued before the restart", async () => {
		assert.equal(readFileSync(join(dataDir, "jwt-secret"), "utf8"), secretBefore);

		const admin = await tern.api("POST", "/api/auth/login", { username: "admin", password: ADMIN_PASSWORD }, null);
		assert.equal(admin.status, 200);
		const wrong = await tern.api("POST", "/api/auth/login", { username: "admin", password: "not-the-password" }, null);
		assert.equal(wrong.status, 401);

		const operator = await tern.api(
			"POST",
			"/api/auth/login",
			{ username: "rs-operator", password: "operator-password" },
			null
		);
		assert.equal(operator.status, 200);
		assert.equal(operator.body.role, "operator");

		const users = await tern.api("GET", "/api/users", undefined, oldAdminToken);
		assert.equal(users.status, 200, "a user token from before the restart is still valid");
		assert.deepEqual(users.body.map((u: { username: string }) => u.username).sort(), ["admin", "rs-operator"]);
		const admins = users.body.filter((u: { role: string }) => u.role === "admin");
		assert.equal(admins.length, 1, "the first-start admin is not created again");
	});

	it("maps the idempotency key to the same task after the restart", async () => {
		const again = await tern.api("POST", "/api/task/submit", {
			terminalId: "rs-idem",
			type: "once",
			idempotencyKey: "restart-key-1"
		});
		assert.equal(again.status, 201);
		assert.equal(again.body.taskId, idempotent);
		assert.equal(again.body.duplicate, true);
		const all = (await tern.api("GET", "/api/tasks?terminalId=rs-idem")).body;
		assert.equal(all.total, 1);
	});
});

describe("recovery after a crash", () => {
	it("returns a task left DELIVERED in the database to the queue and redelivers it as attempt 2", async () => {
		let tern = await TestTern.start({ keep: true });
		const dataDir = tern.dataDir;
		try {
			const token = await tern.registerTerminal("crash-1");
			const terminal = await tern.connectTerminal("crash-1", token);
			const taskId = await tern.submit({ terminalId: "crash-1", type: "t" });
			assert.equal((await terminal.nextTask()).attempt, 1);
			// A crash hands nothing back on the way down: forget the sessions so that closing them
			// returns no task, and the database still says DELIVERED when the new node starts.
			(
				tern.broker.getLocalService("gateway") as unknown as { hub: { sessions: Map<string, unknown> } }
			).hub.sessions.clear();
			tern = await tern.restart();

			const view = await tern.query(taskId);
			assert.equal(view.status, "PENDING");
			assert.equal(view.attempt, 1);
			const again = await tern.connectTerminal("crash-1", token);
			const task = await again.nextTask();
			assert.equal(task.taskId, taskId);
			assert.equal(task.attempt, 2);
			again.close();
		} finally {
			await tern.close();
			rmSync(dataDir, { recursive: true, force: true });
		}
	});
});
