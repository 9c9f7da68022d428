/**
 * The raw WebSocket channels: terminals on `/ws/terminal/:terminalId` (the same session model
 * as socket.io, spoken as `{ type, … }` JSON messages) and followers on `/ws/client/:taskId`.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { TestTern, waitFor, type RawSocket } from "../helpers/tern.ts";

/** The HTTP status and error body of a refused upgrade. */
async function refused(promise: Promise<unknown>): Promise<{ status: number; body: { type?: string; message?: string } }> {
	try {
		await promise;
	} catch (err) {
		const e = err as Error & { status?: number; body?: { type?: string; message?: string } };
		assert.ok(e.status, `the upgrade failed without an HTTP status: ${e.message}`);
		return { status: e.status, body: e.body ?? {} };
	}
	assert.fail("the upgrade was accepted");
}

function closed(raw: RawSocket): Promise<{ code: number; reason: string }> {
	return new Promise(resolve => {
		if (raw.ws.readyState === WebSocket.CLOSED) return resolve({ code: -1, reason: "" });
		raw.ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() }));
	});
}

describe("raw WebSocket terminals and followers", () => {
	let tern: TestTern;

	before(async () => {
		tern = await TestTern.start();
	});
	after(() => tern.close());

	it("delivers a task to a header-authenticated terminal and follows ack, progress and result to COMPLETED", async () => {
		const token = await tern.registerTerminal("ws-1");
		const ws = await tern.openWs("/ws/terminal/ws-1", token, "header");
		await tern.waitForTerminal("ws-1", "online");
		const view = (await tern.api("GET", "/api/terminals/ws-1")).body;
		assert.equal(view.status, "online");

		const taskId = await tern.submit({ terminalId: "ws-1", type: "echo", payload: { n: 7 }, priority: 7 });
		const message = await ws.next("task");
		assert.equal(message.task.taskId, taskId);
		assert.equal(message.task.attempt, 1);
		assert.equal(message.task.type, "echo");
		assert.deepEqual(message.task.payload, { n: 7 });
		assert.equal(message.task.priority, 7);
		assert.equal(message.task.timeout, 300);
		assert.equal((await tern.query(taskId)).status, "DELIVERED");

		ws.send({ type: "ack", taskId, attempt: 1 });
		await tern.waitForStatus(taskId, "PROCESSING");

		ws.send({ type: "progress", taskId, attempt: 1, percent: 50, log: "half" });
		await waitFor(
			async () => (await tern.api("GET", `/api/tasks/${taskId}`)).body.progress === 50,
			5000,
			() => "progress 50"
		);
		assert.equal((await tern.query(taskId)).status, "PROCESSING");

		ws.send({ type: "result", taskId, attempt: 1, status: "success", output: { echoed: 7 }, exitCode: 0 });
		const done = await tern.waitForStatus(taskId, "COMPLETED");
		assert.deepEqual(done.data, { echoed: 7 });
		assert.equal(done.exitCode, 0);
		assert.equal(done.progress, 100);
		assert.equal(
			ws.messages.filter(m => m.type === "error").length,
			0,
			`no errors were sent: ${JSON.stringify(ws.messages.filter(m => m.type === "error"))}`
		);
		await ws.close();
		await tern.waitForTerminal("ws-1", "offline");
	});

	it("accepts the token as ?token= and reports a failed result as FAILED", async () => {
		const token = await tern.registerTerminal("ws-query");
		const ws = await tern.openWs("/ws/terminal/ws-query", token, "query");
		await tern.waitForTerminal("ws-query", "online");
		const taskId = await tern.submit({ terminalId: "ws-query", type: "boom" });
		const { task } = await ws.next("task");
		ws.send({ type: "ack", taskId, attempt: task.attempt });
		await tern.waitForStatus(taskId, "PROCESSING");
		ws.send({ type: "result", taskId, attempt: task.attempt, status: "failed", error: "exploded", exitCode: 2 });
		const failed = await tern.waitForStatus(taskId, "FAILED");
		assert.equal(failed.error, "exploded");
		assert.equal(failed.exitCode, 2);
		await ws.close();
	});

	it("drains the queue of an offline terminal on connect, by priority", async () => {
		const token = await tern.registerTerminal("ws-queue");
		const low = await tern.submit({ terminalId: "ws-queue", type: "t", priority: 1 });
		const high = await tern.submit({ terminalId: "ws-queue", type: "t", priority: 9 });
		assert.equal((await tern.query(low)).status, "PENDING");
		assert.equal((await tern.query(high)).status, "PENDING");
		const ws = await tern.openWs("/ws/terminal/ws-queue", token);
		const first = await ws.next("task");
		const second = await ws.next("task");
		assert.deepEqual([first.task.taskId, second.task.taskId], [high, low]);
		await ws.close();
	});

	it("tells the terminal to stop a cancelled task with a cancel message", async () => {
		const token = await tern.registerTerminal("ws-cancel");
		const ws = await tern.openWs("/ws/terminal/ws-cancel", token);
		const taskId = await tern.submit({ terminalId: "ws-cancel", type: "t" });
		const { task } = await ws.next("task");
		ws.send({ type: "ack", taskId, attempt: task.attempt });
		await tern.waitForStatus(taskId, "PROCESSING");
		const cancelled = await tern.api("POST", `/api/tasks/${taskId}/cancel`);
		assert.equal(cancelled.status, 200);
		const cancel = await ws.next("cancel");
		assert.equal(cancel.taskId, taskId);
		assert.equal(cancel.attempt, 1);
		assert.equal(cancel.reason, "cancelled");
		assert.equal((await tern.query(taskId)).status, "CANCELLED");
		await ws.close();
	});

	it("answers bad messages with an error message naming the problem and changes nothing", async () => {
		const token = await tern.registerTerminal("ws-bad");
		const ws = await tern.openWs("/ws/terminal/ws-bad", token);
		const taskId = await tern.submit({ terminalId: "ws-bad", type: "t" });
		const { task } = await ws.next("task");
		assert.equal(task.attempt, 1);

		ws.send("this is not json {");
		const notJson = await ws.next("error");
		assert.equal(notJson.errorType, "BAD_REQUEST");
		assert.equal(notJson.code, 400);
		assert.match(notJson.message, /not valid JSON/);

		ws.send({ taskId, attempt: 1 });
		const noType = await ws.next("error");
		assert.equal(noType.errorType, "BAD_REQUEST");
		assert.match(noType.message, /'type'/);

		ws.send({ type: "launch-missiles", taskId });
		const unknown = await ws.next("error");
		assert.equal(unknown.errorType, "BAD_REQUEST");
		assert.match(unknown.message, /Unknown message type 'launch-missiles'/);

		ws.send({ type: "ack", taskId: "no-such-task", attempt: 1 });
		const missing = await ws.next("error");
		assert.equal(missing.errorType, "TASK_NOT_FOUND");
		assert.equal(missing.code, 404);
		assert.equal(missing.event, "ack");
		assert.match(missing.message, /no-such-task/);

		ws.send({ type: "ack", taskId, attempt: "first" });
		const invalid = await ws.next("error");
		assert.equal(invalid.errorType, "VALIDATION_ERROR");
		assert.match(invalid.message, /attempt/);

		// Nothing changed: still DELIVERED as attempt 1, never acknowledged.
		const view = await tern.query(taskId);
		assert.equal(view.status, "DELIVERED");
		assert.equal(view.attempt, 1);
		assert.equal(view.startedAt, null);

		// And the connection still works.
		ws.send({ type: "ack", taskId, attempt: 1 });
		await tern.waitForStatus(taskId, "PROCESSING");
		await ws.close();
	});

	it("refuses a result for a superseded attempt with STALE_ATTEMPT", async () => {
		const token = await tern.registerTerminal("ws-stale");
		const ws = await tern.openWs("/ws/terminal/ws-stale", token);
		const taskId = await tern.submit({ terminalId: "ws-stale", type: "t", ackTimeout: 0.3 });
		const first = (await ws.next("task")).task;
		assert.equal(first.attempt, 1);
		// Not acknowledged in time: attempt 1 is called off and attempt 2 is pushed.
		const cancel = await ws.next("cancel");
		assert.equal(cancel.taskId, taskId);
		assert.equal(cancel.reason, "ack-timeout");
		const second = (await ws.next("task")).task;
		assert.equal(second.taskId, taskId);
		assert.equal(second.attempt, 2);

		ws.send({ type: "result", taskId, attempt: 1, status: "success", output: "late" });
		const stale = await ws.next("error");
		assert.equal(stale.errorType, "STALE_ATTEMPT");
		assert.equal(stale.event, "result");
		assert.match(stale.message, /Attempt 1 .* superseded: the current attempt is 2/);
		const view = await tern.query(taskId);
		assert.equal(view.status, "DELIVERED");
		assert.equal(view.attempt, 2);
		assert.equal(view.data, null);

		ws.send({ type: "ack", taskId, attempt: 2 });
		await tern.waitForStatus(taskId, "PROCESSING");
		ws.send({ type: "result", taskId, attempt: 2, status: "success", output: "fine" });
		assert.equal((await tern.waitForStatus(taskId, "COMPLETED")).data, "fine");
		await ws.close();
	});

	it("refuses the upgrade: 401 without a token or with a forged one, 403 for another terminal's path, 400 for an unknown path", async () => {
		const token = await tern.registerTerminal("ws-auth");
		const none = await refused(tern.openWs("/ws/terminal/ws-auth", null));
		assert.equal(none.status, 401);
		assert.equal(none.body.type, "UNAUTHORIZED");

		const forged = "eyJhbGciOiJIUzI1NiJ9.eyJraW5kIjoidGVybWluYWwiLCJrdiI6MSwic3ViIjoid3MtYXV0aCJ9.c2lnbmF0dXJl";
		const bad = await refused(tern.openWs("/ws/terminal/ws-auth", forged));
		assert.equal(bad.status, 401);
		assert.equal(bad.body.type, "INVALID_TOKEN");
		const badQuery = await refused(tern.openWs("/ws/terminal/ws-auth", forged, "query"));
		assert.equal(badQuery.status, 401);

		await tern.registerTerminal("ws-auth-other");
		const other = await refused(tern.openWs("/ws/terminal/ws-auth-other", token));
		assert.equal(other.status, 403);
		assert.equal(other.body.type, "FORBIDDEN");
		assert.match(other.body.message ?? "", /ws-auth/);

		const user = await refused(tern.openWs("/ws/terminal/ws-auth", tern.adminToken));
		assert.equal(user.status, 403);

		const unknown = await refused(tern.openWs("/ws/nowhere", token));
		assert.ok(unknown.status === 400 || unknown.status === 404, `status ${unknown.status}`);
		assert.match(unknown.body.message ?? "", /\/ws\/nowhere/);

		assert.equal(
			(await tern.api("GET", "/api/terminals/ws-auth")).body.status,
			"offline",
			"no refused upgrade made it online"
		);
	});

	it("keeps a beating terminal online and drops a silent one", async () => {
		const quiet = await TestTern.start({ settings: { gateway: { heartbeatTimeout: 400 } } });
		try {
			const beatingToken = await quiet.registerTerminal("ws-beating");
			const silentToken = await quiet.registerTerminal("ws-silent");
			const beating = await quiet.openWs("/ws/terminal/ws-beating", beatingToken);
			let beats = 0;
			const timer = setInterval(() => {
				beating.send({ type: "heartbeat" });
				beats++;
			}, 100);
			try {
				// Connected after the beating one: by the time it is dropped, the beating one has
				// lived longer than the heartbeat timeout on heartbeats alone.
				const silent = await quiet.openWs("/ws/terminal/ws-silent", silentToken);
				const silentClosed = closed(silent);
				await quiet.waitForTerminal("ws-silent", "offline", 3000);
				await silentClosed;
				assert.ok(beats >= 4, `only ${beats} heartbeats sent`);
				assert.equal((await quiet.api("GET", "/api/terminals/ws-beating")).body.status, "online");
				assert.equal(beating.ws.readyState, WebSocket.OPEN);
				assert.equal(beating.messages.filter(m => m.type === "error").length, 0, "a heartbeat is not an error");
			} finally {
				clearInterval(timer);
			}
		} finally {
			await quiet.close();
		}
	});

	it("lets a newer session replace an older one, across transports, and hands the newer what the older had not acknowledged", async () => {
		const token = await tern.registerTerminal("ws-both");

		// socket.io first, then raw WebSocket: the socket.io session is closed.
		const io = await tern.connectTerminal("ws-both", token);
		const first = await tern.submit({ terminalId: "ws-both", type: "t" });
		const pushed = await io.nextTask();
		assert.equal(pushed.taskId, first);
		const ws = await tern.openWs("/ws/terminal/ws-both", token);
		await waitFor(
			() => !io.socket.connected,
			5000,
			() => "the older socket.io session to be closed"
		);
		assert.equal((await tern.api("GET", "/api/terminals/ws-both")).body.status, "online");
		// The unacknowledged task of the closed session goes to the new one as a new attempt.
		const again = (await ws.next("task")).task;
		assert.equal(again.taskId, first);
		assert.equal(again.attempt, 2);
		ws.send({ type: "ack", taskId: first, attempt: 2 });
		await tern.waitForStatus(first, "PROCESSING");

		// New tasks go to the newer session.
		const second = await tern.submit({ terminalId: "ws-both", type: "t" });
		assert.equal((await ws.next("task")).task.taskId, second);
		assert.equal(io.tasks.length, 1);

		// Raw WebSocket first, then socket.io: the WebSocket is closed.
		const wsClosed = closed(ws);
		const io2 = await tern.connectTerminal("ws-both", token);
		await wsClosed;
		assert.equal((await tern.api("GET", "/api/terminals/ws-both")).body.status, "online");
		const third = await tern.submit({ terminalId: "ws-both", type: "t" });
		const tasks = [];
		// The second task was delivered but not acknowledged on the closed WebSocket: it comes back too.
		tasks.push(await io2.nextTask(), await io2.nextTask());
		assert.deepEqual(tasks.map(t => t.taskId).sort(), [second, third].sort());
		assert.equal(tasks.find(t => t.taskId === second)!.attempt, 2);
		// The PROCESSING task stays with the terminal and is finished by the newer session.
		assert.equal((await tern.query(first)).status, "PROCESSING");
		const done = await io2.result({ ...pushed, attempt: 2 });
		assert.equal(done.status, "COMPLETED");
		io2.close();
		await tern.waitForTerminal("ws-both", "offline");
	});

	it("follows a task on /ws/client/:taskId from its current status to COMPLETED, with progress", async () => {
		const token = await tern.registerTerminal("ws-followed");
		const taskId = await tern.submit({ terminalId: "ws-followed", type: "t" });
		const follower = await tern.openWs(`/ws/client/${taskId}`, tern.adminToken);
		const current = await follower.next();
		assert.equal(current.type, "status");
		assert.equal(current.taskId, taskId);
		assert.equal(current.status, "PENDING");

		const terminal = await tern.openWs("/ws/terminal/ws-followed", token);
		const { task } = await terminal.next("task");
		assert.equal((await follower.next("status")).status, "DELIVERED");
		terminal.send({ type: "ack", taskId, attempt: task.attempt });
		const processing = await follower.next("status");
		assert.equal(processing.status, "PROCESSING");
		assert.equal(processing.attempt, 1);
		terminal.send({ type: "progress", taskId, attempt: task.attempt, percent: 50, log: "half" });
		const progress = await follower.next("progress");
		assert.equal(progress.taskId, taskId);
		assert.equal(progress.attempt, 1);
		assert.equal(progress.percent, 50);
		assert.equal(progress.log, "half");
		terminal.send({ type: "result", taskId, attempt: task.attempt, status: "success", output: { answer: 42 } });
		const completed = await follower.next("status");
		assert.equal(completed.status, "COMPLETED");
		assert.deepEqual(completed.data, { answer: 42 });
		assert.deepEqual(
			follower.messages.filter(m => m.type === "status").map(m => m.status),
			["PENDING", "DELIVERED", "PROCESSING", "COMPLETED"]
		);
		await terminal.close();
		await follower.close();
	});

	it("follows a task processed by a socket.io terminal, with the token in the query", async () => {
		const token = await tern.registerTerminal("ws-followed-io");
		const terminal = await tern.connectTerminal("ws-followed-io", token);
		const taskId = await tern.submit({ terminalId: "ws-followed-io", type: "t" });
		const task = await terminal.nextTask();
		const follower = await tern.openWs(`/ws/client/${taskId}`, tern.adminToken, "query");
		assert.equal((await follower.next()).status, "DELIVERED", "the first message is the current status");
		await terminal.ack(task);
		assert.equal((await follower.next("status")).status, "PROCESSING");
		terminal.socket.emit("progress", { taskId, attempt: task.attempt, percent: 30, log: "a third" });
		const progress = await follower.next("progress");
		assert.equal(progress.percent, 30);
		assert.equal(progress.log, "a third");
		await terminal.result(task, "success", "done");
		const completed = await follower.next("status");
		assert.equal(completed.status, "COMPLETED");
		assert.equal(completed.data, "done");
		terminal.close();
		await follower.close();
	});

	it("refuses a follower: 404 for an unknown task, 401 without a token, 403 with a terminal token", async () => {
		const token = await tern.registerTerminal("ws-follow-auth");
		const taskId = await tern.submit({ terminalId: "ws-follow-auth", type: "t" });

		const unknown = await refused(tern.openWs("/ws/client/no-such-task", tern.adminToken));
		assert.equal(unknown.status, 404);
		assert.equal(unknown.body.type, "TASK_NOT_FOUND");

		const none = await refused(tern.openWs(`/ws/client/${taskId}`, null));
		assert.equal(none.status, 401);
		assert.equal(none.body.type, "UNAUTHORIZED");

		const terminal = await refused(tern.openWs(`/ws/client/${taskId}`, token));
		assert.equal(terminal.status, 403);
		assert.equal(terminal.body.type, "FORBIDDEN");
	});
});
