/**
 * What the web console reads beyond the task lifecycle: a task's state history (durable, over
 * a restart), the task list's time and text filters, the preview of a schedule's fire times,
 * watching every change on `/client`, and the phase latencies of the status page.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { io, type Socket } from "socket.io-client";
import type { TaskBody } from "../../lib/contracts.ts";
import { TestTern, type TestTerminal } from "../helpers/tern.ts";
import { until } from "../support/wait.ts";

async function run(
	tern: TestTern,
	terminal: TestTerminal,
	body: Omit<TaskBody, "terminalId">,
	status: "success" | "failed" = "success"
) {
	const taskId = await tern.submit({ terminalId: terminal.id, ...body });
	const push = await terminal.nextTask();
	assert.equal(push.taskId, taskId);
	await terminal.ack(push);
	await terminal.result(push, status, { done: true }, status === "failed" ? { error: "it broke", exitCode: 3 } : {});
	await tern.waitForStatus(taskId, status === "success" ? "COMPLETED" : "FAILED");
	return taskId;
}

function watcher(tern: TestTern, token = tern.adminToken): Promise<Socket> {
	const socket = io(`${tern.url}/client`, { auth: { token }, transports: ["websocket"], reconnection: false });
	return new Promise((resolve, reject) => {
		socket.once("connect", () => resolve(socket));
		socket.once("connect_error", reject);
	});
}

describe("the console's reads", () => {
	let tern: TestTern;
	let terminal: TestTerminal;
	let terminalToken: string;

	before(async () => {
		tern = await TestTern.start();
		terminalToken = await tern.registerTerminal("console-t1");
		terminal = await tern.connectTerminal("console-t1", terminalToken);
	});
	after(async () => {
		terminal?.close();
		await tern?.stop();
	});

	test("a task's history lists every state change with its attempt, oldest first, and survives a restart", async () => {
		const taskId = await run(tern, terminal, { type: "history-check", payload: { n: 1 } }, "failed");
		const history = (await tern.api("GET", `/api/tasks/${taskId}`)).body.history;
		assert.deepEqual(
			history.map((h: { status: string; attempt: number }) => [h.status, h.attempt]),
			[
				["DELIVERED", 1],
				["PROCESSING", 1],
				["FAILED", 1]
			]
		);
		assert.equal(history[0].terminalId, "console-t1");
		assert.equal(history[2].reason, "it broke");
		for (let i = 1; i < history.length; i++) assert.ok(history[i].at >= history[i - 1].at);
		// The list does not carry histories.
		const list = (await tern.api("GET", "/api/tasks?type=history-check")).body;
		assert.equal(list.rows[0].history, undefined);

		terminal.close();
		tern = await tern.restart();
		assert.deepEqual((await tern.api("GET", `/api/tasks/${taskId}`)).body.history, history);
		terminal = await tern.connectTerminal("console-t1", terminalToken);
	});

	test("the list filters by creation time and by text, and refuses bad values naming the field", async () => {
		const before_ = new Date().toISOString();
		const taskId = await run(tern, terminal, { type: "report.nightly", idempotencyKey: "console-key-77" });
		const ids = async (query: string) =>
			((await tern.api("GET", `/api/tasks?${query}`)).body.rows as { taskId: string }[]).map(r => r.taskId);
		assert.deepEqual(await ids(`since=${encodeURIComponent(before_)}`), [taskId]);
		assert.ok(!(await ids(`until=${encodeURIComponent(before_)}`)).includes(taskId));
		assert.deepEqual(await ids("q=nightly"), [taskId]);
		assert.deepEqual(await ids("q=key-77"), [taskId]);
		assert.deepEqual(await ids(`q=${taskId.slice(0, 13)}`), [taskId]);
		assert.ok((await ids("q=console-t1")).includes(taskId));
		assert.deepEqual(await ids("q=%25"), []);
		assert.deepEqual(await ids("q=_"), []);
		for (const [query, field] of [
			["since=yesterday", "since"],
			["until=2026-13-45", "until"],
			[`q=${"x".repeat(129)}`, "q"],
			["q=", "q"]
		]) {
			const reply = await tern.api("GET", `/api/tasks?${query}`);
			assert.equal(reply.status, 422, query);
			assert.equal(reply.body.data[0].field, field, query);
		}
	});

	test("the preview of a schedule: fire times in its time zone, every kind, and the scheduler's own refusals", async () => {
		const cron = await tern.api("POST", "/api/jobs/preview", {
			schedule: { cron: "30 9 * * 1-5", timezone: "Asia/Tokyo" },
			count: 4
		});
		assert.equal(cron.status, 200);
		assert.equal(cron.body.timezone, "Asia/Tokyo");
		assert.equal(cron.body.fireTimes.length, 4);
		for (const at of cron.body.fireTimes) {
			const tokyo = new Date(new Date(at).getTime() + 9 * 3600_000);
			assert.equal(tokyo.getUTCHours(), 9);
			assert.equal(tokyo.getUTCMinutes(), 30);
			assert.ok(tokyo.getUTCDay() >= 1 && tokyo.getUTCDay() <= 5);
		}
		const every = (await tern.api("POST", "/api/jobs/preview", { schedule: { every: 60_000 }, count: 3 })).body;
		assert.equal(new Date(every.fireTimes[1]).getTime() - new Date(every.fireTimes[0]).getTime(), 60_000);
		const past = (await tern.api("POST", "/api/jobs/preview", { schedule: { at: "2020-01-01T00:00:00Z" } })).body;
		assert.deepEqual(past.fireTimes, []);
		assert.match(past.note, /no more/);
		const after_ = (await tern.api("POST", "/api/jobs/preview", { schedule: { delayAfterFinish: 5000 } })).body;
		assert.equal(after_.fireTimes.length, 1);
		const bounded = await tern.api("POST", "/api/jobs/preview", {
			schedule: { every: 60_000 },
			startAt: "2030-01-01T00:00:00Z",
			endAt: "2030-01-01T00:02:00Z"
		});
		assert.deepEqual(bounded.body.fireTimes, [
			"2030-01-01T00:00:00.000Z",
			"2030-01-01T00:01:00.000Z",
			"2030-01-01T00:02:00.000Z"
		]);

		for (const [body, field] of [
			[{ schedule: { cron: "61 * * * *" } }, "schedule.cron"],
			[{ schedule: { cron: "0 0 31 2 *" } }, "schedule.cron"],
			[{ schedule: { cron: "* * * * *", timezone: "Mars/Olympus" } }, "schedule.timezone"],
			[{ schedule: { every: 10 } }, "schedule.every"],
			[{ schedule: { every: 1000 }, count: 51 }, "count"],
			[{ schedule: { every: 1000 }, startAt: "2030-01-02T00:00:00Z", endAt: "2030-01-01T00:00:00Z" }, "endAt"]
		] as const) {
			const reply = await tern.api("POST", "/api/jobs/preview", body);
			assert.equal(reply.status, 422, JSON.stringify(body));
			assert.equal(reply.body.data[0].field, field, JSON.stringify(body));
		}
		// Nothing was saved.
		assert.equal((await tern.api("GET", "/api/jobs")).body.total, 0);
	});

	test("a watcher gets every change in few frames, presence as it changes; a viewer may watch", async () => {
		await tern.api("POST", "/api/users", { username: "console-viewer", password: "viewer-password-1", role: "viewer" });
		const login = await tern.api(
			"POST",
			"/api/auth/login",
			{ username: "console-viewer", password: "viewer-password-1" },
			null
		);
		const socket = await watcher(tern, login.body.token);
		const frames: { events: { taskId: string; status: string }[]; dropped: number }[] = [];
		const presence: { terminalId: string; status: string }[] = [];
		socket.on("statuses", frame => frames.push(frame));
		socket.on("terminal", event => presence.push(event));
		assert.deepEqual(await socket.emitWithAck("watch", {}), { ok: true });
		const refused = await socket.emitWithAck("watch", { everything: true });
		assert.equal(refused.ok, false);
		assert.equal(refused.error.data[0].field, "everything");

		// For a terminal that is not connected: they stay PENDING.
		await tern.registerTerminal("console-idle");
		const ids = await Promise.all(
			Array.from({ length: 30 }, (_, i) => tern.submit({ terminalId: "console-idle", type: "watched", payload: { i } }))
		);
		const seen = () => new Set(frames.flatMap(f => f.events.filter(e => e.status === "PENDING").map(e => e.taskId)));
		await until(
			socket,
			["statuses"],
			() => ids.every(id => seen().has(id)),
			5000,
			() => `30 submits, saw ${seen().size}`
		);
		assert.ok(frames.length <= 10, `30 changes came in ${frames.length} frames`);
		assert.equal(
			frames.reduce((n, f) => n + f.dropped, 0),
			0
		);

		const other = await tern.connectTerminal("console-t2", await tern.registerTerminal("console-t2"));
		await until(socket, ["terminal"], () => presence.some(p => p.terminalId === "console-t2" && p.status === "online"));
		other.close();
		await until(socket, ["terminal"], () => presence.some(p => p.terminalId === "console-t2" && p.status === "offline"));

		assert.deepEqual(await socket.emitWithAck("unwatch", {}), { ok: true });
		const count = frames.length;
		await run(tern, terminal, { type: "unwatched" }).catch(() => undefined);
		// Still a follower's channel: it answers, and no frame came since unwatch.
		assert.deepEqual(await socket.emitWithAck("unwatch", {}), { ok: true });
		assert.equal(frames.length, count);
		socket.close();
		// The viewer cannot create a job, whatever it may watch.
		assert.equal((await tern.api("POST", "/api/jobs/preview", { schedule: { every: 1000 } }, login.body.token)).status, 200);
		assert.equal(
			(
				await tern.api(
					"POST",
					"/api/jobs",
					{ name: "x", schedule: { every: 1000 }, task: { terminalId: "console-t1", type: "x" } },
					login.body.token
				)
			).status,
			403
		);
	});

	test("the status page gives the phase latencies of the tasks that ended in the last minute", async () => {
		await run(tern, terminal, { type: "latency" });
		const status = (await tern.api("GET", "/api/system/status")).body;
		for (const phase of ["queue", "start", "run", "total"]) {
			const p = status.latency[phase];
			assert.ok(p, `latency.${phase}`);
			assert.ok(p.count >= 1);
			assert.ok(p.p50 >= 0 && p.p50 <= p.p95 && p.p95 <= p.p99, JSON.stringify(p));
		}
		assert.ok(status.latency.total.p99 >= status.latency.run.p50);
	});
});
