import { describe, it } from "node:test";
import assert from "node:assert/strict";
import Moleculer from "moleculer";
import { BoundedLabel } from "../../../lib/metrics/bounded-label.ts";
import { TaskMetrics, type TaskFacts } from "../../../lib/metrics/tasks.ts";
import { fields, loggerOptions } from "../../../lib/log-format.ts";

function registry() {
	return new Moleculer.ServiceBroker({ logger: false, metrics: { enabled: true, collectProcessMetrics: false } }).metrics;
}

const value = (reg: ReturnType<typeof registry>, name: string, labels: Record<string, string> = {}) =>
	(reg.getMetric(name)?.get(labels) as { value?: number; count?: number } | undefined) ?? {};

const row = (over: Partial<TaskFacts>): TaskFacts => ({
	status: "PENDING",
	type: "shell",
	priority: 0,
	createdAt: 1000,
	updatedAt: 1000,
	deliveredAt: null,
	startedAt: null,
	finishedAt: null,
	error: null,
	...over
});

describe("metrics helpers", () => {
	it("a bounded label keeps the first values and calls the rest 'other'", () => {
		const label = new BoundedLabel(2);
		assert.deepEqual(
			["a", "b", "c", "a", "d"].map(v => label.value(v)),
			["a", "b", "other", "a", "other"]
		);
	});

	it("task metrics read states, phases, timeouts and retries off the rows", () => {
		const reg = registry();
		const m = new TaskMetrics(reg);
		const pending = row({});
		m.admitted(pending);
		const delivered = row({ status: "DELIVERED", updatedAt: 1500, deliveredAt: 1500 });
		m.changed(pending, delivered, {});
		const processing = { ...delivered, status: "PROCESSING" as const, startedAt: 1600, updatedAt: 1600 };
		m.changed(delivered, processing, {});
		const retried = { ...processing, status: "PENDING" as const, startedAt: null, deliveredAt: null, updatedAt: 2600 };
		m.changed(processing, retried, { retry: { ended: "TIMEOUT" } });
		assert.equal(value(reg, "tern_tasks_total", { status: "PENDING", type: "shell" }).value, 2);
		assert.equal(value(reg, "tern_task_phase_seconds", { phase: "queue" }).count, 1);
		assert.equal(value(reg, "tern_task_phase_seconds", { phase: "start" }).count, 1);
		assert.equal(value(reg, "tern_task_phase_seconds", { phase: "run" }).count, 1);
		assert.equal(value(reg, "tern_task_timeouts_total", { kind: "run" }).value, 1);
		assert.equal(value(reg, "tern_task_retries_total").value, 1);
		const failed = { ...processing, status: "FAILED" as const, finishedAt: 3000, error: "RESULT_TOO_LARGE: 2 MiB" };
		m.changed(processing, failed, {});
		assert.equal(value(reg, "tern_task_failures_total", { category: "RESULT_TOO_LARGE" }).value, 1);
		assert.equal(value(reg, "tern_task_phase_seconds", { phase: "total" }).count, 1);
		m.queueDepth([{ priority: 5, n: 3 }]);
		m.queueDepth([]);
		assert.equal(value(reg, "tern_queue_depth", { priority: "5" }).value, 0);
	});

	it("are no-ops when metrics are off", () => {
		const off = new Moleculer.ServiceBroker({ logger: false, metrics: false }).metrics;
		const m = new TaskMetrics(off);
		assert.equal(m.enabled, false);
		m.admitted(row({}));
	});

	it("LOG_FORMAT=json: a leading fields() becomes fields of the line", () => {
		const options = loggerOptions("json", "info") as unknown as {
			options: { formatter: (...args: unknown[]) => string[] };
		};
		const printArgs = (args: unknown[]) => args.map(String);
		const [line] = options.options.formatter(
			"info",
			[fields({ taskId: "t1", terminalId: null }), "Push failed", "t1"],
			{ nodeID: "n", ns: "", mod: "dispatcher" },
			{ printArgs }
		);
		const parsed = JSON.parse(line) as Record<string, unknown>;
		assert.equal(parsed.msg, "Push failed t1");
		assert.equal(parsed.taskId, "t1");
		assert.equal("terminalId" in parsed, false);
		assert.equal(parsed.mod, "dispatcher");
	});
});
