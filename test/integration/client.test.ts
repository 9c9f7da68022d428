/**
 * Following tasks live on the socket.io namespace `/client`: who may connect, `subscribe` /
 * `unsubscribe`, and the `status` and `progress` events a subscriber receives.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { io, type Socket } from "socket.io-client";
import { TestTern, waitFor } from "../helpers/tern.ts";
import type { TaskProgressEvent, TaskStatusEvent } from "../../lib/contracts.ts";

/** A `/client` socket that records what it receives. */
class Follower {
	readonly socket: Socket;
	readonly statuses: TaskStatusEvent[] = [];
	readonly progress: TaskProgressEvent[] = [];
	readonly errors: { type: string; message: string; event?: string }[] = [];

	constructor(socket: Socket) {
		this.socket = socket;
		socket.on("status", (msg: TaskStatusEvent) => this.statuses.push(msg));
		socket.on("progress", (msg: TaskProgressEvent) => this.progress.push(msg));
		socket.on("error", (err: { type: string; message: string; event?: string }) => this.errors.push(err));
	}

	request<T = any>(event: string, data: unknown): Promise<T> {
		return this.socket.timeout(5000).emitWithAck(event, data) as Promise<T>;
	}

	of(taskId: string): string[] {
		return this.statuses.filter(s => s.taskId === taskId).map(s => s.status);
	}

	async waitForStatus(taskId: string, status: string): Promise<TaskStatusEvent> {
		await waitFor(
			() => this.statuses.some(s => s.taskId === taskId && s.status === status),
			5000,
			() => `status ${status} of ${taskId} (have ${JSON.stringify(this.of(taskId))})`
		);
		return this.statuses.find(s => s.taskId === taskId && s.status === status)!;
	}

	close(): void {
		this.socket.close();
	}
}

describe("following tasks on socket.io /client", () => {
	let tern: TestTern;
	const open: Socket[] = [];

	/** Connects to /client; rejects with the server's connect_error. */
	async function follow(token: string | null): Promise<Follower> {
		const socket = io(`${tern.url}/client`, {
			auth: token ? { token } : {},
			transports: ["websocket"],
			forceNew: true,
			reconnection: false
		});
		open.push(socket);
		const follower = new Follower(socket);
		await new Promise<void>((resolve, reject) => {
			socket.once("connect", resolve);
			socket.once("connect_error", reject);
		});
		return follower;
	}

	before(async () => {
		tern = await TestTern.start();
	});
	after(async () => {
		for (const socket of open) socket.close();
		await tern.close();
	});

	it("refuses a connection without a token, with a forged token and with a terminal token", async () => {
		await assert.rejects(follow(null), (err: Error & { data?: { type: string } }) => {
			assert.equal(err.data?.type, "UNAUTHORIZED");
			return true;
		});
		const forged = "eyJhbGciOiJIUzI1NiJ9.eyJraW5kIjoidXNlciIsInJvbGUiOiJhZG1pbiIsInVpZCI6MSwic3ViIjoiYWRtaW4ifQ.c2lnbmF0dXJl";
		await assert.rejects(follow(forged), (err: Error & { data?: { type: string } }) => {
			assert.equal(err.data?.type, "INVALID_TOKEN");
			return true;
		});
		const terminalToken = await tern.registerTerminal("cl-refused");
		await assert.rejects(follow(terminalToken), (err: Error & { data?: { type: string; message?: string } }) => {
			assert.equal(err.data?.type, "FORBIDDEN");
			assert.match(err.message, /user token/);
			return true;
		});
	});

	it("sends the current status on subscribe, then every change in order, with the result on COMPLETED", async () => {
		const token = await tern.registerTerminal("cl-1");
		const taskId = await tern.submit({ terminalId: "cl-1", type: "t" });
		const follower = await follow(tern.adminToken);

		const reply = await follower.request("subscribe", { taskId });
		assert.equal(reply.ok, true);
		assert.equal(reply.taskId, taskId);
		const current = await follower.waitForStatus(taskId, "PENDING");
		assert.equal(current.attempt, 0);

		const terminal = await tern.connectTerminal("cl-1", token);
		const task = await terminal.nextTask();
		const delivered = await follower.waitForStatus(taskId, "DELIVERED");
		assert.equal(delivered.attempt, 1);
		assert.equal(delivered.terminalId, "cl-1");
		await terminal.ack(task);
		await follower.waitForStatus(taskId, "PROCESSING");
		await terminal.result(task, "success", { rows: 3 }, { exitCode: 0 });
		const completed = await follower.waitForStatus(taskId, "COMPLETED");
		assert.deepEqual(completed.data, { rows: 3 });
		assert.equal(completed.exitCode, 0);
		assert.equal(completed.attempt, 1);

		assert.deepEqual(follower.of(taskId), ["PENDING", "DELIVERED", "PROCESSING", "COMPLETED"]);
		assert.equal(follower.errors.length, 0);
		terminal.close();
		follower.close();
	});

	it("relays progress to subscribers", async () => {
		const token = await tern.registerTerminal("cl-progress");
		const terminal = await tern.connectTerminal("cl-progress", token);
		const taskId = await tern.submit({ terminalId: "cl-progress", type: "t" });
		const task = await terminal.nextTask();
		const follower = await follow(tern.adminToken);
		assert.equal((await follower.request("subscribe", { taskId })).ok, true);
		await terminal.ack(task);
		await follower.waitForStatus(taskId, "PROCESSING");

		const reply = await terminal.request("progress", { taskId, attempt: task.attempt, percent: 40, log: "step 2 of 5" });
		assert.equal(reply.ok, true);
		await terminal.request("progress", { taskId, attempt: task.attempt, log: "just a line" });
		await waitFor(
			() => follower.progress.length === 2,
			5000,
			() => `two progress events (have ${follower.progress.length})`
		);
		const [first, second] = follower.progress;
		assert.equal(first.taskId, taskId);
		assert.equal(first.attempt, 1);
		assert.equal(first.percent, 40);
		assert.equal(first.log, "step 2 of 5");
		assert.ok(first.at);
		assert.equal(second.log, "just a line");
		assert.equal(second.percent, undefined);
		assert.equal((await tern.api("GET", `/api/tasks/${taskId}`)).body.progress, 40);
		terminal.close();
		follower.close();
	});

	it("answers a subscribe to an unknown task with ok:false TASK_NOT_FOUND and an error event", async () => {
		const follower = await follow(tern.adminToken);
		const reply = await follower.request("subscribe", { taskId: "no-such-task" });
		assert.equal(reply.ok, false);
		assert.equal(reply.error.type, "TASK_NOT_FOUND");
		assert.match(reply.error.message, /no-such-task/);
		await waitFor(() => follower.errors.length > 0);
		assert.equal(follower.errors[0].type, "TASK_NOT_FOUND");
		assert.equal(follower.errors[0].event, "subscribe");

		const invalid = await follower.request("subscribe", {});
		assert.equal(invalid.ok, false);
		assert.equal(invalid.error.type, "VALIDATION_ERROR");
		assert.match(invalid.error.message, /taskId/);
		assert.equal(follower.statuses.length, 0);
		assert.equal(follower.socket.connected, true, "a bad subscribe does not end the connection");
		follower.close();
	});

	it("stops sending events for a task after unsubscribe", async () => {
		const token = await tern.registerTerminal("cl-unsub");
		const terminal = await tern.connectTerminal("cl-unsub", token);
		const left = await tern.submit({ terminalId: "cl-unsub", type: "t" });
		const task = await terminal.nextTask();
		// Another task, queued for an offline terminal, stays subscribed.
		await tern.registerTerminal("cl-unsub-other");
		const kept = await tern.submit({ terminalId: "cl-unsub-other", type: "t" });

		const follower = await follow(tern.adminToken);
		assert.equal((await follower.request("subscribe", { taskId: left })).ok, true);
		assert.equal((await follower.request("subscribe", { taskId: kept })).ok, true);
		await follower.waitForStatus(left, "DELIVERED");
		await follower.waitForStatus(kept, "PENDING");

		assert.equal((await follower.request("unsubscribe", { taskId: left })).ok, true);
		await terminal.ack(task);
		await terminal.request("progress", { taskId: left, attempt: task.attempt, percent: 10 });
		await terminal.result(task);
		await tern.waitForStatus(left, "COMPLETED");

		// A later change of the task still followed: everything emitted before it has arrived.
		assert.equal((await tern.api("POST", `/api/tasks/${kept}/cancel`)).status, 200);
		await follower.waitForStatus(kept, "CANCELLED");
		assert.deepEqual(follower.of(left), ["DELIVERED"]);
		assert.equal(follower.progress.length, 0);
		terminal.close();
		follower.close();
	});

	it("lets any user role follow, and several followers each get every event", async () => {
		const created = await tern.api("POST", "/api/users", {
			username: "cl-viewer",
			password: "viewer-password",
			role: "viewer"
		});
		assert.equal(created.status, 201);
		const login = await tern.api("POST", "/api/auth/login", { username: "cl-viewer", password: "viewer-password" }, null);
		assert.equal(login.status, 200);

		const token = await tern.registerTerminal("cl-many");
		const taskId = await tern.submit({ terminalId: "cl-many", type: "t" });
		const viewer = await follow(login.body.token);
		const admin = await follow(tern.adminToken);
		assert.equal((await viewer.request("subscribe", { taskId })).ok, true);
		assert.equal((await admin.request("subscribe", { taskId })).ok, true);

		const terminal = await tern.connectTerminal("cl-many", token);
		const task = await terminal.nextTask();
		await terminal.ack(task);
		await terminal.result(task, "failed", null, { error: "nope", exitCode: 1 });
		for (const follower of [viewer, admin]) {
			const failed = await follower.waitForStatus(taskId, "FAILED");
			assert.equal(failed.error, "nope");
			assert.equal(failed.exitCode, 1);
			assert.deepEqual(follower.of(taskId), ["PENDING", "DELIVERED", "PROCESSING", "FAILED"]);
		}
		terminal.close();
		viewer.close();
		admin.close();
	});
});
