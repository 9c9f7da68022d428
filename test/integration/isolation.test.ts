/**
 * Terminal isolation: a terminal sees and answers only its own tasks, whichever way it speaks —
 * REST, socket.io or a raw WebSocket — and a refused attempt changes nothing.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestTern, type TestTerminal } from "../helpers/tern.ts";
import { restCall } from "../support/rest.ts";
import type { TaskPush } from "../../lib/contracts.ts";

describe("terminal isolation", () => {
	let tern: TestTern;
	let owner: TestTerminal;
	let otherToken: string;
	let task: TaskPush;

	const asOther = (method: string, path: string, body?: unknown) => restCall(tern.url + path, method, body, otherToken);

	before(async () => {
		tern = await TestTern.start();
		const ownerToken = await tern.registerTerminal("iso-owner");
		otherToken = await tern.registerTerminal("iso-other");
		owner = await tern.connectTerminal("iso-owner", ownerToken);
		await tern.submit({ terminalId: "iso-owner", type: "t", payload: { mine: true } });
		task = await owner.nextTask();
	});
	after(() => tern.close());

	it("refuses another terminal's ack, progress and result over REST, and its attempts to see or pull the task", async () => {
		const ref = { taskId: task.taskId, attempt: task.attempt };
		assert.equal((await asOther("POST", "/api/task/ack", ref)).body.type, "TASK_NOT_YOURS");
		assert.equal((await asOther("POST", "/api/task/progress", { ...ref, percent: 50 })).body.type, "TASK_NOT_YOURS");
		const result = await asOther("POST", "/api/task/result", { ...ref, status: "success", output: "forged" });
		assert.equal(result.body.type, "TASK_NOT_YOURS");

		const seen = await asOther("GET", `/api/tasks/${task.taskId}`);
		assert.equal(seen.status, 404, JSON.stringify(seen.body));
		assert.ok(!JSON.stringify(seen.body).includes("mine"), "nothing of the task is shown");
		const queried = await asOther("GET", `/api/task/query?taskId=${task.taskId}`);
		assert.equal(queried.status, 404, JSON.stringify(queried.body));
		const pulled = await asOther("GET", "/api/task/pull?terminalId=iso-owner");
		assert.equal(pulled.status, 403, JSON.stringify(pulled.body));
		const own = await asOther("GET", "/api/task/pull?terminalId=iso-other");
		assert.deepEqual(own.body.tasks, [], "its own pull finds nothing of the other's");
		assert.equal((await tern.query(task.taskId)).status, "DELIVERED");
	});

	it("refuses it over socket.io", async () => {
		const other = await tern.connectTerminal("iso-other", otherToken);
		assert.equal((await other.ack(task)).error.type, "TASK_NOT_YOURS");
		assert.equal((await other.result(task, "success", "forged")).error.type, "TASK_NOT_YOURS");
		other.close();
		assert.equal((await tern.query(task.taskId)).status, "DELIVERED");
	});

	it("refuses it over a raw WebSocket, and the owner still finishes the task", async () => {
		const raw = await tern.openWs("/ws/terminal/iso-other", otherToken);
		raw.send({ type: "ack", taskId: task.taskId, attempt: task.attempt });
		assert.equal((await raw.next("error")).errorType ?? "", "TASK_NOT_YOURS");
		raw.send({ type: "result", taskId: task.taskId, attempt: task.attempt, status: "success", output: "forged" });
		assert.equal((await raw.next("error")).errorType ?? "", "TASK_NOT_YOURS");
		raw.ws.close();

		assert.equal((await owner.ack(task)).ok, true);
		await owner.result(task, "success", "real");
		const done = await tern.waitForStatus(task.taskId, "COMPLETED");
		assert.equal(done.data, "real", "only the owner's result counts");
	});
});
