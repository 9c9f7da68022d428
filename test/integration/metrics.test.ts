/**
 * Metrics end to end: tasks run through a real terminal, then the node's GET /metrics is read
 * as Prometheus would read it. Also the health endpoints on the main port.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestTern, waitFor } from "../helpers/tern.ts";
import { sample, scrape } from "../support/metrics.ts";

const N = 5;

describe("metrics", () => {
	let tern: TestTern;

	before(async () => {
		tern = await TestTern.start();
	});
	after(() => tern.close());

	it("serves Prometheus text at GET /metrics, without auth", async () => {
		const res = await fetch(`${tern.url}/metrics`);
		assert.equal(res.status, 200);
		assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
		const text = await res.text();
		assert.match(text, /# TYPE tern_terminals_online gauge/);
		assert.match(text, /nodeID="/);
	});

	it("counts tasks, phases and terminals as they run", async () => {
		const token = await tern.registerTerminal("m-1");
		const terminal = await tern.connectTerminal("m-1", token);
		let families = await scrape(tern.url);
		assert.equal(sample(families, "tern_terminals_online", { transport: "socketio" }), 1);
		assert.equal(sample(families, "tern_terminal_connects_total", { transport: "socketio" }), 1);

		const ids: string[] = [];
		for (let i = 0; i < N; i++) ids.push(await tern.submit({ type: "shell", terminalId: "m-1", payload: { i } }));
		for (let i = 0; i < N; i++) {
			const task = await terminal.nextTask();
			await terminal.ack(task);
			await terminal.result(task);
		}
		for (const id of ids) await tern.waitForStatus(id, "COMPLETED");

		families = await scrape(tern.url);
		assert.equal(sample(families, "tern_task_phase_seconds", { phase: "total" }, "count"), N);
		assert.equal(sample(families, "tern_task_phase_seconds", { phase: "run" }, "count"), N);
		assert.equal(sample(families, "tern_task_phase_seconds", { phase: "start" }, "count"), N);
		assert.equal(sample(families, "tern_tasks_total", { status: "COMPLETED" }), N);
		assert.equal(sample(families, "tern_tasks_total", { status: "COMPLETED", type: "shell" }), N);
		assert.equal(sample(families, "tern_task_transitions_total", { from: "PROCESSING", to: "COMPLETED" }), N);
		assert.ok(sample(families, "tern_commit_batch_size", {}, "count") > 0);
		// Moleculer's own series are there too.
		assert.ok(families.some(f => f.name === "moleculer_request_total"));

		terminal.close();
		await tern.waitForTerminal("m-1", "offline");
		await waitFor(
			async () => sample(await scrape(tern.url), "tern_terminals_online", { transport: "socketio" }) === 0,
			5000,
			() => "tern_terminals_online to fall to 0"
		);
		families = await scrape(tern.url);
		assert.equal(sample(families, "tern_terminal_disconnects_total", { transport: "socketio", reason: "normal" }), 1);
	});

	it("counts a failed attempt and its retry", async () => {
		const token = await tern.registerTerminal("m-2");
		const terminal = await tern.connectTerminal("m-2", token);
		const id = await tern.submit({ type: "shell", terminalId: "m-2", maxRetries: 1 });
		const first = await terminal.nextTask();
		await terminal.ack(first);
		await terminal.result(first, "failed", null, { error: "boom" });
		const second = await terminal.nextTask();
		await terminal.ack(second);
		await terminal.result(second, "failed", null, { error: "boom" });
		await tern.waitForStatus(id, "FAILED");
		const families = await scrape(tern.url);
		assert.equal(sample(families, "tern_task_failures_total", { category: "task_error" }), 2);
		assert.equal(sample(families, "tern_task_retries_total"), 1);
		terminal.close();
	});

	it("counts a terminal Tern disconnects, by why", async () => {
		const token = await tern.registerTerminal("m-3");
		await tern.connectTerminal("m-3", token);
		assert.equal((await tern.api("POST", "/api/terminals/m-3/disable")).status, 200);
		await waitFor(
			async () =>
				sample(await scrape(tern.url), "tern_terminal_disconnects_total", { transport: "socketio", reason: "kicked" }) ===
				1,
			5000,
			() => "a kicked disconnect to be counted"
		);
	});

	it("counts raw WebSocket terminals under transport ws", async () => {
		const token = await tern.registerTerminal("m-ws");
		const ws = await tern.openWs("/ws/terminal/m-ws", token);
		await tern.waitForTerminal("m-ws", "online");
		assert.equal(sample(await scrape(tern.url), "tern_terminals_online", { transport: "ws" }), 1);
		await ws.close();
		await waitFor(
			async () =>
				sample(await scrape(tern.url), "tern_terminal_disconnects_total", { transport: "ws", reason: "normal" }) === 1,
			5000,
			() => "the ws disconnect to be counted"
		);
		assert.equal(sample(await scrape(tern.url), "tern_terminals_online", { transport: "ws" }), 0);
	});

	it("answers /healthz/live and /healthz/ready on the main port with JSON", async () => {
		for (const path of ["/healthz/live", "/healthz/ready"]) {
			const res = await fetch(tern.url + path);
			assert.equal(res.status, 200, path);
			assert.match(res.headers.get("content-type") ?? "", /application\/json/);
			const body = (await res.json()) as { nodeID: string };
			assert.equal(body.nodeID, tern.broker.nodeID);
		}
		const ready = (await (await fetch(`${tern.url}/healthz/ready`)).json()) as { ready: boolean };
		assert.equal(ready.ready, true);
	});
});
