import { test } from "node:test";
import assert from "node:assert/strict";
import { LATENCY_WINDOW_MS, LatencyWindow, quantile } from "../../../../services/monitor/latency.ts";

test("quantile by nearest rank", () => {
	const values = Array.from({ length: 100 }, (_, i) => i + 1);
	assert.equal(quantile(values, 0.5), 50);
	assert.equal(quantile(values, 0.95), 95);
	assert.equal(quantile(values, 0.99), 99);
	assert.equal(quantile(values, 1), 100);
	assert.equal(quantile([7], 0.99), 7);
	assert.equal(quantile([], 0.5), 0);
});

test("the window keeps the last minute's phases only, and phases with no sample are absent", () => {
	const window = new LatencyWindow();
	const t0 = 1_000_000;
	const ended = (ms: number) => ({
		taskId: "t",
		status: "COMPLETED" as const,
		attempt: 1,
		terminalId: "x",
		at: "",
		phases: { total: ms, run: ms / 2 }
	});
	window.record([ended(1000)], t0);
	window.record(
		Array.from({ length: 10 }, (_, i) => ended(i + 1)),
		t0 + LATENCY_WINDOW_MS / 2
	);
	window.record([{ taskId: "p", status: "PENDING", attempt: 0, terminalId: null, at: "" }], t0);
	const now = window.summary(t0 + LATENCY_WINDOW_MS + 1);
	assert.deepEqual(Object.keys(now).sort(), ["run", "total"]);
	assert.deepEqual(now.total, { p50: 5, p95: 10, p99: 10, count: 10 });
	assert.equal(window.summary(t0 + 2 * LATENCY_WINDOW_MS).total, undefined);
});
