/**
 * What a submit answers: a selector no registered terminal matches is refused for every strategy
 * (or queued when asked), an idempotency key repeated with another body is a conflict, a fan-out
 * names its group and its tasks, and a result over the limit fails its task with the reason.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestTern } from "../helpers/tern.ts";
import type { TaskPush } from "../../lib/contracts.ts";

const RESULT_LIMIT = 64 * 1024;

describe("submitting tasks", () => {
	let tern: TestTern;

	before(async () => {
		tern = await TestTern.start({ settings: { dispatcher: { maxResultBytes: RESULT_LIMIT } } });
	});
	after(() => tern.close());

	it("refuses a selector that matches no registered terminal with 422 NO_MATCHING_TERMINAL, for every strategy", async () => {
		const before = (await tern.api("GET", "/api/tasks")).body.total;
		for (const strategy of ["round_robin", "random", "least_busy", "consistent_hash", "broadcast", "sharding"]) {
			const reply = await tern.api("POST", "/api/task/submit", {
				selector: { labels: { region: "nowhere" }, strategy, key: "k" },
				type: "t"
			});
			assert.equal(reply.status, 422, strategy);
			assert.equal(reply.body.type, "NO_MATCHING_TERMINAL", strategy);
			assert.match(reply.body.message, /"region":"nowhere"/, "the message names the labels");
			assert.deepEqual(reply.body.data, { labels: { region: "nowhere" } });
		}
		assert.equal((await tern.api("GET", "/api/tasks")).body.total, before, "nothing was created");
	});

	it("queues such a task when asked with waitForTerminal, and pushes it when a matching terminal registers and connects", async () => {
		const reply = await tern.api("POST", "/api/task/submit", {
			selector: { labels: { region: "later" } },
			type: "t",
			waitForTerminal: true
		});
		assert.equal(reply.status, 201);
		const token = await tern.registerTerminal("later-1", { labels: { region: "later" } });
		const terminal = await tern.connectTerminal("later-1", token);
		assert.equal((await terminal.nextTask()).taskId, reply.body.taskId);
		terminal.close();
	});

	it("accepts a selector that matches a registered terminal that is offline, and holds the task for it", async () => {
		await tern.registerTerminal("offline-1", { labels: { region: "asleep" } });
		const reply = await tern.api("POST", "/api/task/submit", { selector: { labels: { region: "asleep" } }, type: "t" });
		assert.equal(reply.status, 201);
		assert.equal((await tern.query(reply.body.taskId)).status, "PENDING");
	});

	it("answers a repeated idempotency key with the same task, and a different body under it with 409 IDEMPOTENCY_CONFLICT", async () => {
		await tern.registerTerminal("idem-1");
		const body = { terminalId: "idem-1", type: "t", payload: { a: 1, b: [1, 2] }, idempotencyKey: "order-42" };
		const first = await tern.api("POST", "/api/task/submit", body);
		assert.equal(first.status, 201);
		const same = await tern.api("POST", "/api/task/submit", { ...body, payload: { b: [1, 2], a: 1 } });
		assert.equal(same.body.taskId, first.body.taskId, "the same body, keys in another order");
		for (const changed of [{ payload: { a: 2, b: [1, 2] } }, { type: "other" }, { priority: 9 }]) {
			const conflict = await tern.api("POST", "/api/task/submit", { ...body, ...changed });
			assert.equal(conflict.status, 409, JSON.stringify(changed));
			assert.equal(conflict.body.type, "IDEMPOTENCY_CONFLICT");
			assert.equal(conflict.body.data.taskId, first.body.taskId);
			assert.match(conflict.body.message, /order-42/);
		}
	});

	it("answers broadcast and sharding submits with their groupId and every task id", async () => {
		for (const id of ["fan-1", "fan-2"]) await tern.registerTerminal(id, { labels: { pool: "fan" } });
		for (const strategy of ["broadcast", "sharding"]) {
			const reply = await tern.api("POST", "/api/task/submit", {
				selector: { labels: { pool: "fan" }, strategy },
				type: "t"
			});
			assert.equal(reply.status, 201, strategy);
			assert.equal(typeof reply.body.groupId, "string");
			assert.equal(reply.body.taskIds.length, 2);
			assert.equal(reply.body.taskId, reply.body.taskIds[0]);
			const listed = await tern.api("GET", `/api/tasks?groupId=${reply.body.groupId}`);
			assert.deepEqual(listed.body.rows.map((r: { taskId: string }) => r.taskId).sort(), [...reply.body.taskIds].sort());
		}
	});

	it("refuses a REST result over the limit with 413 RESULT_TOO_LARGE and fails the task with that reason", async () => {
		const token = await tern.registerTerminal("big-1");
		const taskId = await tern.submit({ terminalId: "big-1", type: "t" });
		const pulled = await tern.api<{ tasks: TaskPush[] }>("GET", "/api/task/pull?terminalId=big-1", undefined, token);
		assert.equal(pulled.body.tasks[0].taskId, taskId);
		const output = { text: "x".repeat(RESULT_LIMIT + 10) };
		const reply = await tern.api("POST", "/api/task/result", { taskId, attempt: 1, status: "success", output }, token);
		assert.equal(reply.status, 413);
		assert.equal(reply.body.type, "RESULT_TOO_LARGE");
		assert.equal(reply.body.data.limit, RESULT_LIMIT);
		const task = await tern.query(taskId);
		assert.equal(task.status, "FAILED");
		assert.match(task.error ?? "", /RESULT_TOO_LARGE/);
		const small = await tern.submit({ terminalId: "big-1", type: "t" });
		const next = await tern.api<{ tasks: TaskPush[] }>("GET", "/api/task/pull?terminalId=big-1", undefined, token);
		assert.equal(next.body.tasks[0].taskId, small, "the terminal's slot was freed");
	});
});
