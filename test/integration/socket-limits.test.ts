/**
 * How fast a terminal may talk and reconnect: messages past the per-session limit are refused
 * with RATE_LIMITED and not handled, twice the limit in one second disconnects with a reason,
 * and one terminal id may open only so many sessions per window (each replacing the one before).
 * The gateway's clock is the test's: windows end when the test says so.
 */
import { after, before, beforeEach, describe, it } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { TestTern, type RawSocket } from "../helpers/tern.ts";
import { until } from "../support/wait.ts";

let now = 1_000_000;
const clock = () => now;

describe("socket limits", () => {
	let tern: TestTern;
	before(
		async () =>
			(tern = await TestTern.start({
				settings: {
					gateway: {
						messageRateLimit: 3,
						reconnectLimit: 2,
						reconnectWindow: 10_000,
						clock,
						maxMessageBytes: 64 * 1024
					}
				}
			}))
	);
	after(() => tern.close());
	// Every test starts in a fresh window of each limit.
	beforeEach(() => (now += 60_000));

	it("socket.io: a message past the limit is refused with RATE_LIMITED and not handled", async () => {
		const token = await tern.registerTerminal("lim-io");
		const terminal = await tern.connectTerminal("lim-io", token);
		const taskId = (await tern.api("POST", "/api/task/submit", { terminalId: "lim-io", type: "t" })).body.taskId as string;
		const task = await terminal.nextTask();
		for (let i = 0; i < 3; i++) assert.deepEqual(await terminal.request("heartbeat"), { ok: true });
		const refused = await terminal.ack(task);
		assert.equal(refused.ok, false);
		assert.equal(refused.error.type, "RATE_LIMITED");
		assert.equal(refused.error.data.retryAfter, 1);
		assert.equal(
			(await tern.api("GET", `/api/task/query?taskId=${taskId}`)).body.status,
			"DELIVERED",
			"the ack was not handled"
		);
		now += 1000;
		assert.equal((await terminal.ack(task)).ok, true, "a new second, a new allowance");
		await tern.waitForStatus(taskId, "PROCESSING");
		assert.ok(terminal.socket.connected);
	});

	it("socket.io: twice the limit within a second disconnects, saying why", async () => {
		const token = await tern.registerTerminal("lim-io-abuse");
		const terminal = await tern.connectTerminal("lim-io-abuse", token);
		const disconnected = new Promise<string>(resolve => terminal.socket.once("disconnect", resolve));
		for (let i = 0; i < 6; i++) terminal.socket.emit("heartbeat");
		assert.equal(await disconnected, "io server disconnect");
		assert.ok(
			terminal.errors.some(e => e.type === "RATE_LIMITED" && /Disconnected: too many messages/.test(e.message)),
			JSON.stringify(terminal.errors)
		);
		await tern.waitForTerminal("lim-io-abuse", "offline");
	});

	it("raw WebSocket: refused past the limit, disconnected (1008) at twice the limit", async () => {
		const token = await tern.registerTerminal("lim-ws");
		const ws: RawSocket = await tern.openWs("/ws/terminal/lim-ws", token);
		await tern.waitForTerminal("lim-ws", "online");
		for (let i = 0; i < 3; i++) ws.send({ type: "heartbeat" });
		ws.send({ type: "progress", taskId: "nope", attempt: 1, percent: 5 });
		const error = await ws.next("error");
		assert.equal(error.errorType, "RATE_LIMITED", JSON.stringify(error));
		assert.equal(error.event, "progress");
		const closed = new Promise<{ code: number; reason: string }>(resolve =>
			ws.ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() }))
		);
		for (let i = 0; i < 3; i++) ws.send({ type: "heartbeat" });
		const close = await closed;
		assert.equal(close.code, 1008);
		assert.match(close.reason, /rate limited/);
		assert.ok(ws.messages.some(m => m.type === "error" && /Disconnected/.test(m.message)));
	});

	it("bounds how often one terminal id reconnects; a newer session still replaces the older", async () => {
		const token = await tern.registerTerminal("lim-re");
		const first = await tern.connectTerminal("lim-re", token);
		const replaced = new Promise<string>(resolve => first.socket.once("disconnect", resolve));
		await tern.connectTerminal("lim-re", token);
		assert.equal(await replaced, "io server disconnect", "the second session replaced the first");
		// The third within the window: refused, with when to come back.
		const third = io(`${tern.url}/terminal`, {
			auth: { token },
			transports: ["websocket"],
			reconnection: false,
			forceNew: true
		});
		const refusal = await new Promise<Error & { data?: { type: string; data: { retryAfter: number } } }>(resolve =>
			third.once("connect_error", resolve)
		);
		third.close();
		assert.equal(refusal.data?.type, "RATE_LIMITED");
		assert.equal(refusal.data?.data.retryAfter, 10);
		await assert.rejects(tern.openWs("/ws/terminal/lim-re", token), (err: { status: number; body: { type: string } }) => {
			assert.equal(err.status, 429);
			assert.equal(err.body.type, "RATE_LIMITED");
			return true;
		});
		// A bad token does not count against the terminal's connections.
		now += 10_000;
		await assert.rejects(tern.openWs("/ws/terminal/lim-re", "bad-token"), (err: { status: number }) => err.status === 401);
		await assert.rejects(tern.openWs("/ws/terminal/lim-re", "bad-token"), (err: { status: number }) => err.status === 401);
		const back = await tern.openWs("/ws/terminal/lim-re", token);
		await until(back.ws, ["message"], () => back.ws.readyState === back.ws.OPEN);
	});

	it("drops a connection whose message is over the message size limit, on both transports", async () => {
		const big = "x".repeat(80 * 1024);
		const token = await tern.registerTerminal("lim-size");
		const ws = await tern.openWs("/ws/terminal/lim-size", token);
		const closed = new Promise<number>(resolve => ws.ws.once("close", code => resolve(code)));
		ws.send({ type: "progress", taskId: "t", attempt: 1, log: big });
		assert.equal(await closed, 1009, "message too big");
		now += 60_000;
		const terminal = await tern.connectTerminal("lim-size", token);
		const disconnected = new Promise<string>(resolve => terminal.socket.once("disconnect", resolve));
		terminal.socket.emit("progress", { taskId: "t", attempt: 1, log: big });
		assert.equal(await disconnected, "transport close");
	});
});
