/**
 * What the agent relies on: a task's output, streamed as progress logs, is kept (bounded) and
 * readable while and after the task runs; terminals that name their capabilities get only
 * selector tasks of those types.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestTern, waitFor } from "../helpers/tern.ts";
import { io } from "socket.io-client";

describe("task output and capabilities", () => {
	let tern: TestTern;

	before(async () => {
		tern = await TestTern.start({ settings: { dispatcher: { maxLogLines: 5 } } });
	});
	after(() => tern.close());

	it("keeps streamed output, readable while the task runs and after it ends, bounded per task", async () => {
		const token = await tern.registerTerminal("out-1");
		const terminal = await tern.connectTerminal("out-1", token);
		const taskId = await tern.submit({ terminalId: "out-1", type: "command" });
		const task = await terminal.nextTask();
		await terminal.ack(task);
		await terminal.request("progress", { taskId, attempt: task.attempt, log: "line one\n", stream: "stdout" });
		await terminal.request("progress", { taskId, attempt: task.attempt, log: "oops\n", stream: "stderr", percent: 40 });

		const running = await tern.api("GET", `/api/tasks/${taskId}/logs`);
		assert.equal(running.status, 200);
		assert.deepEqual(
			running.body.lines.map((l: { seq: number; stream: string; text: string; attempt: number }) => [
				l.seq,
				l.stream,
				l.text,
				l.attempt
			]),
			[
				[1, "stdout", "line one\n", 1],
				[2, "stderr", "oops\n", 1]
			]
		);
		assert.equal(running.body.next, 2);
		assert.equal((await tern.query(taskId)).progress, 40);

		for (let i = 3; i <= 8; i++) await terminal.request("progress", { taskId, attempt: task.attempt, log: `more ${i}\n` });
		await terminal.result(task);
		const after = await tern.api("GET", `/api/tasks/${taskId}/logs?after=2`);
		assert.deepEqual(
			after.body.lines.map((l: { seq: number }) => l.seq),
			[3, 4, 5],
			"kept up to the bound of 5 lines"
		);
		const bad = await terminal.request("progress", { taskId: "x", attempt: 1, log: "a", stream: "stdlog" });
		assert.equal(bad.error.type, "VALIDATION_ERROR");
		assert.equal((await tern.api("GET", "/api/tasks/no-such/logs")).body.type, "TASK_NOT_FOUND");
		terminal.close();
	});

	it("routes selector tasks only to terminals that have the task's type, and pins regardless", async () => {
		const httpToken = await tern.registerTerminal("cap-http", { labels: { pool: "cap" } });
		const anyToken = await tern.registerTerminal("cap-any", { labels: { pool: "cap" } });
		const httpOnly = io(`${tern.url}/terminal`, {
			auth: { token: httpToken, capabilities: ["http"] },
			transports: ["websocket"],
			forceNew: true,
			reconnection: false
		});
		const got: Record<string, string[]> = { "cap-http": [], "cap-any": [] };
		httpOnly.on("task", (t: { type: string }) => got["cap-http"].push(t.type));
		await new Promise<void>(resolve => httpOnly.once("connect", () => resolve()));
		await tern.waitForTerminal("cap-http", "online");

		// Only cap-http is online: a command task matching the pool waits for a terminal that takes commands.
		const command = await tern.submit({ selector: { labels: { pool: "cap" } }, type: "command" });
		const http = await tern.submit({ selector: { labels: { pool: "cap" } }, type: "http" });
		await waitFor(() => got["cap-http"].length === 1);
		assert.deepEqual(got["cap-http"], ["http"]);
		assert.equal((await tern.query(command)).status, "PENDING");
		assert.equal((await tern.query(http)).status, "DELIVERED");

		const anyType = await tern.connectTerminal("cap-any", anyToken);
		const received = await anyType.nextTask();
		assert.equal(received.taskId, command, "a terminal without declared capabilities takes any type");

		await tern.submit({ terminalId: "cap-http", type: "docker" });
		await waitFor(() => got["cap-http"].length === 2);
		assert.equal(got["cap-http"][1], "docker", "a pinned task is delivered; the terminal answers it");
		httpOnly.close();
		anyType.close();
	});
});
