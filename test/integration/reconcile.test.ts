/**
 * The consistency check (`POST /api/system/reconcile`): each disagreement it looks for is made
 * by hand — a lost disconnect, a sweep that stopped, a session on a node that is gone, a fire
 * claimed and never settled — and the check must find it, repair it, and find nothing after.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { TestTern } from "../helpers/tern.ts";
import { replCommands } from "../../lib/repl-commands.ts";
import type { Presence, ReconcileReport } from "../../lib/contracts.ts";
import type { Dispatcher } from "../../services/dispatcher/dispatcher.ts";
import type { ResilientTaskStore } from "../../services/dispatcher/resilient-store.ts";
import type { JobStore } from "../../services/scheduler/store.ts";

interface DispatcherInside {
	dispatcher: Dispatcher;
	store: ResilientTaskStore;
	sweepTimer: NodeJS.Timeout;
}

describe("the consistency check", () => {
	let tern: TestTern;
	let inside: DispatcherInside;

	before(async () => {
		tern = await TestTern.start({ settings: { monitor: { reconcileInterval: 0 } } });
		inside = tern.broker.getLocalService("dispatcher") as unknown as DispatcherInside;
	});
	after(() => tern?.close());

	const reconcile = async () => {
		const reply = await tern.api<ReconcileReport>("POST", "/api/system/reconcile");
		assert.equal(reply.status, 200, JSON.stringify(reply.body));
		return reply.body;
	};
	const checkOf = (report: ReconcileReport, name: string) => report.checks.find(c => c.name === name)!;

	it("finds nothing on a healthy node, and only an admin may run it", async () => {
		const report = await reconcile();
		assert.equal(report.found, 0);
		assert.deepEqual(
			report.checks.map(c => c.name),
			["presence-dead-node", "delivered-offline", "delivered-overdue", "processing-overdue", "fire-without-task"]
		);
		assert.deepEqual(report.unanswered, []);
		await tern.api("POST", "/api/users", { username: "viewer1", password: "viewer-password-1", role: "viewer" });
		const login = await tern.api("POST", "/api/auth/login", { username: "viewer1", password: "viewer-password-1" }, null);
		const denied = await tern.api("POST", "/api/system/reconcile", undefined, login.body.token);
		assert.equal(denied.status, 403);
		const unknown = await tern.api("POST", "/api/system/reconcile", { fix: true });
		assert.equal(unknown.status, 422);
	});

	it("returns to the queue a task delivered to a terminal whose disconnect was lost", async () => {
		const token = await tern.registerTerminal("lost-1");
		const terminal = await tern.connectTerminal("lost-1", token);
		const taskId = await tern.submit({ terminalId: "lost-1", type: "echo", payload: {} });
		await terminal.nextTask();
		// The session's end never reached the dispatcher: the mirror lost it, the row still says DELIVERED.
		const presence = inside.dispatcher.core.presence.get("lost-1")!;
		inside.dispatcher.core.presence.remove("lost-1", presence.sessionId);
		await inside.store.driver.run("UPDATE tasks SET deliveredAt = ? WHERE id = ?", [Date.now() - 60_000, taskId]);
		const report = await reconcile();
		const check = checkOf(report, "delivered-offline");
		assert.deepEqual([check.found, check.repaired, check.samples], [1, 1, [taskId]]);
		assert.equal((await tern.query(taskId)).status, "PENDING");
		terminal.close();
	});

	it("ends tasks held past their deadline when the sweep did not", async () => {
		clearInterval(inside.sweepTimer);
		await tern.registerTerminal("slow-1");
		const late = Date.now() - 60_000;
		const ids = [
			await tern.submit({ terminalId: "slow-1", type: "a" }),
			await tern.submit({ terminalId: "slow-1", type: "b" })
		];
		await inside.store.driver.run(
			"UPDATE tasks SET status = 'PROCESSING', attempt = 1, terminalId = 'slow-1', deadlineAt = ?, startedAt = ? WHERE id = ?",
			[late, late, ids[0]]
		);
		await inside.store.driver.run(
			"UPDATE tasks SET status = 'DELIVERED', attempt = 1, terminalId = 'slow-1', deadlineAt = ?, deliveredAt = ? WHERE id = ?",
			[late, Date.now(), ids[1]]
		);
		const report = await reconcile();
		const running = checkOf(report, "processing-overdue");
		const acked = checkOf(report, "delivered-overdue");
		assert.deepEqual([running.found, running.repaired, running.samples], [1, 1, [ids[0]]]);
		assert.deepEqual([acked.found, acked.repaired, acked.samples], [1, 1, [ids[1]]]);
		assert.equal((await tern.query(ids[0])).status, "TIMEOUT");
		assert.notEqual((await tern.query(ids[1])).status, "DELIVERED");
		assert.equal((await reconcile()).found, 0, "nothing left to find");
	});

	it("drops sessions of a gateway node that is gone, from the dispatcher's and the cache's picture", async () => {
		const ghost: Presence = {
			terminalId: "ghost-1",
			nodeID: "gone-node",
			sessionId: "s-1",
			connectedAt: Date.now(),
			lastActiveAt: Date.now(),
			transport: "socketio",
			concurrency: 1
		} as Presence;
		inside.dispatcher.core.presence.set(ghost);
		(tern.broker.getLocalService("cache") as unknown as { presence: Map<string, Presence> }).presence.set("ghost-1", ghost);
		const check = checkOf(await reconcile(), "presence-dead-node");
		assert.deepEqual([check.found, check.repaired], [2, 2]);
		assert.equal(inside.dispatcher.core.presence.get("ghost-1"), null);
	});

	it("settles a fire claimed and never settled (the REPL runs the same check)", async () => {
		await tern.registerTerminal("cron-1");
		const job = await tern.api("POST", "/api/jobs", {
			name: "yearly",
			schedule: { cron: "0 0 1 1 *" },
			task: { terminalId: "cron-1", type: "report" }
		});
		assert.equal(job.status, 201, JSON.stringify(job.body));
		const store = (tern.broker.getLocalService("scheduler") as unknown as { store: JobStore }).store;
		const fireTime = Date.now() - 3_600_000;
		assert.equal(await store.claim(job.body.id, fireTime, "gone-node", Date.now() - 600_000), true);
		const replReconcile = replCommands.find(c => c.command === "reconcile")!;
		const report = (await replReconcile.action(tern.broker, { options: {} })) as ReconcileReport;
		const check = checkOf(report, "fire-without-task");
		assert.deepEqual([check.found, check.repaired], [1, 1]);
		assert.notEqual((await store.fire(job.body.id, fireTime))?.outcome, "CLAIMED");
	});
});
