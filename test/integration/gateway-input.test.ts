/**
 * What a terminal or a stranger can send the gateway, on both transports, and what it must not
 * do: messages nested 10,000 deep, upgrade URLs that are not valid percent-encoding, results
 * larger than the result limit, messages that miss a field. Each gets an error that names the
 * caller's field, and the process and the connection stay up.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Server as IoServer } from "socket.io";
import { io } from "socket.io-client";
import type { WebSocketServer } from "ws";
import { TestTern, waitFor, type RawSocket, type TestTerminal } from "../helpers/tern.ts";
import type { TaskPush } from "../../lib/contracts.ts";

const DEPTH = 10_000;
/** A JSON text nested DEPTH deep, built as text: no encoder could build it from a value. */
const deepText = (depth = DEPTH) => '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
/** A result's output well over the 1 MiB result limit and under the 2 MiB message limit. */
const BIG_OUTPUT = "x".repeat(1_500_000);

/** Emits a socket.io event whose JSON is given as text (`args`: the event's arguments, a JSON array's inside). */
function emitRaw(terminal: TestTerminal, event: string, args: string): void {
	terminal.socket.io.engine.write(`2/terminal,["${event}",${args}]`);
}

/** The next error event of a socket.io terminal after the `seen` first ones. */
async function nextError(terminal: TestTerminal, seen: number): Promise<TestTerminal["errors"][number]> {
	await waitFor(
		() => terminal.errors.length > seen,
		5000,
		() => `error event #${seen + 1} on ${terminal.id}`
	);
	return terminal.errors[seen];
}

/** A validation error's items: the caller's field, a sentence, a rule — nothing of the cluster's. */
function assertPublicItems(data: unknown, field: string): void {
	assert.ok(Array.isArray(data) && data.length > 0, `items: ${JSON.stringify(data)}`);
	for (const item of data as Record<string, unknown>[]) {
		assert.deepEqual(
			Object.keys(item)
				.filter(k => !["field", "message", "type"].includes(k))
				.sort(),
			[],
			`only field, message and type: ${JSON.stringify(item)}`
		);
		assert.equal(item.field, field);
		assert.doesNotMatch(String(item.message), /kind|replies\[/);
	}
}

describe("the gateway's input bounds", () => {
	let tern: TestTern;

	before(async () => {
		tern = await TestTern.start();
	});
	after(() => tern.close());

	async function socketIoTask(
		id: string,
		extra: Record<string, unknown> = {}
	): Promise<{ terminal: TestTerminal; task: TaskPush }> {
		const terminal = await tern.connectTerminal(id, await tern.registerTerminal(id));
		await tern.submit({ terminalId: id, type: "t", ...extra });
		return { terminal, task: await terminal.nextTask() };
	}

	async function wsTask(id: string): Promise<{ ws: RawSocket; task: TaskPush }> {
		const ws = await tern.openWs(`/ws/terminal/${id}`, await tern.registerTerminal(id));
		await tern.submit({ terminalId: id, type: "t" });
		return { ws, task: (await ws.next("task")).task as TaskPush };
	}

	it("refuses socket.io ack, progress and result nested 10,000 deep with VALIDATION_ERROR naming the field, and the connection and the task go on", async () => {
		const { terminal, task } = await socketIoTask("deep-io");
		const ids = `"taskId":"${task.taskId}","attempt":${task.attempt}`;

		emitRaw(terminal, "ack", `{"taskId":"${task.taskId}","attempt":${deepText()}}`);
		const ack = await nextError(terminal, 0);
		assert.equal(ack.type, "VALIDATION_ERROR");
		assert.equal(ack.event, "ack");
		assert.match(ack.message, /'attempt' nests deeper than 64 levels/);
		assert.equal((await tern.query(task.taskId)).status, "DELIVERED");

		assert.equal((await terminal.ack(task)).ok, true);
		emitRaw(terminal, "progress", `{${ids},"log":${deepText()}}`);
		const progress = await nextError(terminal, 1);
		assert.equal(progress.type, "VALIDATION_ERROR");
		assert.equal(progress.event, "progress");
		assert.match(progress.message, /'log'/);

		emitRaw(terminal, "result", `{${ids},"status":"success","output":${deepText()}}`);
		const result = await nextError(terminal, 2);
		assert.equal(result.type, "VALIDATION_ERROR");
		assert.equal(result.event, "result");
		assert.match(result.message, /'output'/);
		assert.equal((await tern.query(task.taskId)).status, "PROCESSING", "a refused result changes nothing");

		assert.equal(terminal.socket.connected, true);
		assert.equal((await terminal.result(task, "success", { fine: true })).ok, true);
		assert.deepEqual((await tern.waitForStatus(task.taskId, "COMPLETED")).data, { fine: true });
		terminal.close();
	});

	it("refuses raw WebSocket ack, progress and result nested 10,000 deep before parsing, naming the field, and the connection and the task go on", async () => {
		const { ws, task } = await wsTask("deep-ws");
		const ids = `"taskId":"${task.taskId}","attempt":${task.attempt}`;

		ws.send(`{"type":"ack","taskId":"${task.taskId}","attempt":${deepText()}}`);
		const ack = await ws.next("error");
		assert.equal(ack.errorType, "VALIDATION_ERROR");
		assert.equal(ack.event, "ack");
		assert.match(ack.message, /'attempt' nests deeper than 64 levels/);

		ws.send({ type: "ack", taskId: task.taskId, attempt: task.attempt });
		await tern.waitForStatus(task.taskId, "PROCESSING");
		ws.send(`{"type":"progress",${ids},"log":${deepText()}}`);
		const progress = await ws.next("error");
		assert.equal(progress.errorType, "VALIDATION_ERROR");
		assert.equal(progress.event, "progress");
		assert.match(progress.message, /'log'/);

		// Arrays nest as deep as objects do.
		ws.send(`{"type":"result",${ids},"status":"success","output":${"[".repeat(DEPTH)}${"]".repeat(DEPTH)}}`);
		const result = await ws.next("error");
		assert.equal(result.errorType, "VALIDATION_ERROR");
		assert.equal(result.event, "result");
		assert.match(result.message, /'output'/);
		assert.equal((await tern.query(task.taskId)).status, "PROCESSING");

		ws.send({ type: "result", taskId: task.taskId, attempt: task.attempt, status: "success", output: "fine" });
		assert.equal((await tern.waitForStatus(task.taskId, "COMPLETED")).data, "fine");
		await ws.close();
	});

	it("refuses a /client subscribe nested 10,000 deep with VALIDATION_ERROR, and the follower's connection goes on", async () => {
		await tern.registerTerminal("deep-followed");
		const taskId = await tern.submit({ terminalId: "deep-followed", type: "t" });
		const follower = io(`${tern.url}/client`, {
			auth: { token: tern.adminToken },
			transports: ["websocket"],
			reconnection: false,
			forceNew: true
		});
		try {
			await new Promise<void>((resolve, reject) => {
				follower.once("connect", resolve);
				follower.once("connect_error", reject);
			});
			const error = new Promise<{ type: string; event?: string; message: string }>(resolve =>
				follower.once("error", resolve)
			);
			follower.io.engine.write(`2/client,["subscribe",{"taskId":${deepText()}}]`);
			const refused = await error;
			assert.equal(refused.type, "VALIDATION_ERROR");
			assert.equal(refused.event, "subscribe");
			assert.match(refused.message, /'taskId'/);
			const subscribed = (await follower.timeout(5000).emitWithAck("subscribe", { taskId })) as { ok: boolean };
			assert.equal(subscribed.ok, true);
		} finally {
			follower.close();
		}
	});

	it("answers an upgrade whose id is not valid percent-encoding with 400, on both paths, and stays up", async () => {
		const token = await tern.registerTerminal("bad-uri");
		for (const path of ["/ws/client/%ZZ", "/ws/terminal/%E0%A4%A"]) {
			const refused = await tern.openWs(path, path.includes("client") ? tern.adminToken : token).then(
				() => assert.fail(`the upgrade to ${path} was accepted`),
				(err: { status?: number; body?: { type?: string; message?: string } }) => err
			);
			assert.equal(refused.status, 400, path);
			assert.equal(refused.body?.type, "BAD_REQUEST", path);
			assert.match(refused.body?.message ?? "", /percent-encoding/);
		}
		// The process is up: REST answers and a terminal connects.
		assert.equal((await tern.api("GET", "/api/terminals/bad-uri")).status, 200);
		const ws = await tern.openWs("/ws/terminal/bad-uri", token);
		await tern.waitForTerminal("bad-uri", "online");
		await ws.close();
	});

	it("sets the transports' message limits above the result limit: maxResultBytes + 1 MiB", () => {
		const gateway = tern.broker.getLocalService("gateway") as unknown as { io: IoServer; wss: WebSocketServer };
		const expected = 2 * 1024 * 1024;
		assert.equal((gateway.io.engine as unknown as { opts: { maxHttpBufferSize: number } }).opts.maxHttpBufferSize, expected);
		assert.equal(gateway.wss.options.maxPayload, expected);
	});

	it("refuses a 1.5 MB socket.io result with RESULT_TOO_LARGE, keeps the connection and fails the task with that reason, without retries", async () => {
		const { terminal, task } = await socketIoTask("big-io", { maxRetries: 3 });
		await terminal.ack(task);
		const reply = await terminal.result(task, "success", BIG_OUTPUT);
		assert.equal(reply.ok, false);
		assert.equal(reply.error.type, "RESULT_TOO_LARGE");
		const event = await nextError(terminal, 0);
		assert.equal(event.type, "RESULT_TOO_LARGE");
		assert.equal(event.event, "result");
		const failed = await tern.waitForStatus(task.taskId, "FAILED");
		assert.match(failed.error ?? "", /RESULT_TOO_LARGE/);
		assert.equal(failed.data, null);
		assert.equal(failed.attempt, 1, "the same work would give the same output: no retry");

		// Still connected, and still working.
		assert.equal(terminal.socket.connected, true);
		assert.equal((await terminal.request("heartbeat")).ok, true);
		const next = await tern.submit({ terminalId: "big-io", type: "t" });
		const pushed = await terminal.nextTask();
		assert.equal(pushed.taskId, next);
		assert.equal((await terminal.ack(pushed)).ok, true);
		assert.equal((await tern.query(next)).status, "PROCESSING");
		terminal.close();
	});

	it("refuses a 1.5 MB raw WebSocket result with RESULT_TOO_LARGE, keeps the connection and fails the task with that reason", async () => {
		const { ws, task } = await wsTask("big-ws");
		ws.send({ type: "ack", taskId: task.taskId, attempt: task.attempt });
		await tern.waitForStatus(task.taskId, "PROCESSING");
		ws.send({ type: "result", taskId: task.taskId, attempt: task.attempt, status: "success", output: BIG_OUTPUT });
		const error = await ws.next("error");
		assert.equal(error.errorType, "RESULT_TOO_LARGE");
		assert.equal(error.event, "result");
		assert.match((await tern.waitForStatus(task.taskId, "FAILED")).error ?? "", /RESULT_TOO_LARGE/);

		const next = await tern.submit({ terminalId: "big-ws", type: "t" });
		const pushed = (await ws.next("task")).task as TaskPush;
		assert.equal(pushed.taskId, next);
		ws.send({ type: "ack", taskId: next, attempt: pushed.attempt });
		await tern.waitForStatus(next, "PROCESSING");
		await ws.close();
	});

	it("names the caller's field when an ack has no attempt or a result no status, on raw WebSocket, and never an internal one", async () => {
		const { ws, task } = await wsTask("missing-ws");
		ws.send({ type: "ack", taskId: task.taskId });
		const ack = await ws.next("error");
		assert.equal(ack.errorType, "VALIDATION_ERROR");
		assert.equal(ack.event, "ack");
		assert.match(ack.message, /'attempt'/);
		assert.doesNotMatch(ack.message, /kind|status|replies/);
		assertPublicItems(ack.data, "attempt");

		ws.send({ type: "ack", taskId: task.taskId, attempt: task.attempt });
		await tern.waitForStatus(task.taskId, "PROCESSING");
		ws.send({ type: "result", taskId: task.taskId, attempt: task.attempt });
		const result = await ws.next("error");
		assert.equal(result.errorType, "VALIDATION_ERROR");
		assert.match(result.message, /'status'/);
		assert.doesNotMatch(result.message, /kind/);
		assertPublicItems(result.data, "status");

		ws.send({ type: "progress", taskId: task.taskId, attempt: task.attempt, percent: 500 });
		const progress = await ws.next("error");
		assert.equal(progress.errorType, "VALIDATION_ERROR");
		assertPublicItems(progress.data, "percent");
		assert.equal((await tern.query(task.taskId)).status, "PROCESSING");
		await ws.close();
	});

	it("names the caller's field when an ack has no attempt or a result no status, on socket.io, and never an internal one", async () => {
		const { terminal, task } = await socketIoTask("missing-io");
		const ack = await terminal.request("ack", { taskId: task.taskId });
		assert.equal(ack.ok, false);
		assert.equal(ack.error.type, "VALIDATION_ERROR");
		assert.match(ack.error.message, /'attempt'/);
		assert.doesNotMatch(ack.error.message, /kind|status|replies/);
		assertPublicItems(ack.error.data, "attempt");
		assert.match((await nextError(terminal, 0)).message, /'attempt'/);

		await terminal.ack(task);
		const result = await terminal.request("result", { taskId: task.taskId, attempt: task.attempt, status: "maybe" });
		assert.equal(result.error.type, "VALIDATION_ERROR");
		assert.match(result.error.message, /'status'/);
		assert.doesNotMatch(result.error.message, /kind/);
		assertPublicItems(result.error.data, "status");

		const progress = await terminal.request("progress", { taskId: task.taskId, attempt: task.attempt, percent: 500 });
		assert.equal(progress.error.type, "VALIDATION_ERROR");
		assertPublicItems(progress.error.data, "percent");
		assert.equal((await tern.query(task.taskId)).status, "PROCESSING");
		terminal.close();
	});
	it("refuses unknown fields, numbers given as booleans or 1e308, NUL characters and non-object messages, on both transports, changing nothing", async () => {
		const { terminal, task } = await socketIoTask("strict-io");
		const ids = { taskId: task.taskId, attempt: task.attempt };
		const refused: [string, unknown, RegExp][] = [
			["ack", { ...ids, extra: 1 }, /'extra'/],
			["ack", { taskId: task.taskId, attempt: true }, /'attempt'/],
			["ack", { taskId: `${task.taskId}\u0000`, attempt: 1 }, /'taskId' must not contain a NUL/],
			["progress", { ...ids, percent: 5, extra: 1 }, /extra/],
			["progress", { ...ids, log: "a\u0000" }, /'log' must not contain a NUL/],
			["result", { ...ids, status: "success", exitCode: 1e308 }, /'exitCode'/],
			["result", { ...ids, status: "success", exitCode: [0] }, /'exitCode'/],
			["result", { ...ids, status: "success", extra: 1 }, /'extra'/]
		];
		for (const [event, message, pattern] of refused) {
			const answer = await terminal.request(event, message);
			assert.equal(answer.ok, false, `${event} ${JSON.stringify(message)}`);
			assert.ok(answer.error.code >= 400 && answer.error.code < 500, JSON.stringify(answer.error));
			assert.match(answer.error.message, pattern);
			assert.doesNotMatch(JSON.stringify(answer.error), /"nodeID"|"action"|dispatcher\./);
		}
		for (const event of ["ack", "progress", "result"])
			for (const message of [null, [], "text", 7]) {
				const answer = await terminal.request(event, message);
				assert.equal(answer.ok, false, `${event} ${JSON.stringify(message)}`);
				assert.ok(answer.error.code >= 400 && answer.error.code < 500, JSON.stringify(answer.error));
			}
		assert.equal((await tern.query(task.taskId)).status, "DELIVERED", "nothing was taken");
		assert.equal(terminal.socket.connected, true);
		assert.equal((await terminal.ack(task)).ok, true);
		terminal.close();

		const { ws, task: wsTaskPush } = await wsTask("strict-ws");
		ws.send({ type: "ack", taskId: wsTaskPush.taskId, attempt: wsTaskPush.attempt, extra: 1 });
		assert.match((await ws.next("error")).message, /'extra'/);
		ws.send({ type: "ack", taskId: wsTaskPush.taskId, attempt: wsTaskPush.attempt, note: "\u0000" });
		assert.match((await ws.next("error")).message, /'note' must not contain a NUL/);
		for (const text of ["[]", '"ack"', "null", "7"]) {
			ws.send(text);
			assert.equal((await ws.next("error")).errorType, "BAD_REQUEST", text);
		}
		assert.equal((await tern.query(wsTaskPush.taskId)).status, "DELIVERED");
		await ws.close();
	});
});
