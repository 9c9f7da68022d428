/**
 * The monitor's signals as pure functions: each built-in alert's condition computed from a
 * snapshot and what was counted, at fixed times.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { AlertRuleView, SignalName } from "../../../../lib/contracts.ts";
import { fingerprintOf, holds, observe, type Memory, type Snapshot } from "../../../../services/monitor/signals.ts";
import { EventWindow, SampleHistory } from "../../../../services/monitor/windows.ts";

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);

function rule(
	metric: SignalName,
	condition: AlertRuleView["condition"],
	threshold: number,
	extra: Partial<AlertRuleView> = {}
): AlertRuleView {
	return {
		id: `r-${metric}`,
		name: metric,
		builtin: true,
		enabled: true,
		severity: "warning",
		metric,
		condition,
		threshold,
		window: 300,
		for: 0,
		matchers: {},
		labels: {},
		channels: [],
		repeatInterval: 3600,
		escalation: null,
		createdAt: "",
		updatedAt: "",
		...extra
	};
}

function memory(): Memory {
	return { counts: new EventWindow(), online: new SampleHistory(), fireProblems: [] };
}

function snapshot(extra: Partial<Snapshot> = {}): Snapshot {
	return {
		at: T0,
		terminals: { online: 0, offline: 0, disabled: 0, criticalOffline: [] },
		tasks: { byStatus: {}, oldestPendingAt: null },
		database: { latencySeconds: 0.002, error: null },
		nodesDown: [],
		degraded: [],
		...extra
	};
}

const options = { minTasksForRate: 1 };

describe("event window", () => {
	it("sums what happened within the last seconds, forgetting what is older", () => {
		const w = new EventWindow<"a">();
		w.add("a", T0 - 400_000);
		w.add("a", T0 - 200_000, 2);
		w.add("a", T0 - 1_000);
		w.add("a", T0);
		assert.equal(w.sum("a", 300, T0), 4);
		assert.equal(w.sum("a", 60, T0), 2);
		assert.equal(w.sum("a", 3600, T0), 5);
		// An hour later, the ring's slots hold a later lap: nothing of the old counts.
		assert.equal(w.sum("a", 3600, T0 + 3600_000), 0);
	});

	it("never counts an event twice nor loses one within the hour (any times)", () => {
		fc.assert(
			fc.property(fc.array(fc.integer({ min: 0, max: 3599 }), { maxLength: 200 }), offsets => {
				const w = new EventWindow<"a">();
				const times = offsets.map(o => T0 - o * 1000).sort((a, b) => a - b);
				for (const t of times) w.add("a", t);
				assert.equal(w.sum("a", 3600, T0), times.length);
				assert.equal(w.sum("a", 60, T0), times.filter(t => t > T0 - 60_000).length);
			})
		);
	});
});

describe("signals", () => {
	it("online terminals dropping by half within the window holds; a smaller drop does not", () => {
		const m = memory();
		m.online.add(T0 - 100_000, 6);
		m.online.add(T0 - 50_000, 5);
		const half = observe(
			rule("terminals_online_drop", ">=", 0.5),
			snapshot({ terminals: { online: 3, offline: 3, disabled: 0, criticalOffline: [] } }),
			m,
			options
		);
		assert.equal(half?.length, 1);
		assert.equal(half?.[0].value, 0.5);
		assert.match(half![0].summary, /from 6 to 3/);
		const less = observe(
			rule("terminals_online_drop", ">=", 0.5),
			snapshot({ terminals: { online: 4, offline: 2, disabled: 0, criticalOffline: [] } }),
			m,
			options
		);
		assert.deepEqual(less, []);
		// Outside the window the old peak no longer counts.
		const later = observe(
			rule("terminals_online_drop", ">=", 0.5, { window: 30 }),
			snapshot({ terminals: { online: 3, offline: 3, disabled: 0, criticalOffline: [] } }),
			m,
			options
		);
		assert.deepEqual(later, []);
	});

	it("timeout and failure rates count ended tasks within the window, and wait for enough of them", () => {
		const m = memory();
		for (let i = 0; i < 20; i++) m.counts.add("ended", T0 - i * 1000);
		m.counts.add("timedOut", T0 - 1000);
		m.counts.add("timedOut", T0 - 2000);
		m.counts.add("failed", T0 - 3000);
		const timeouts = observe(rule("task_timeout_rate", ">", 0.05), snapshot(), m, options);
		assert.equal(timeouts?.[0].value, 0.1);
		assert.deepEqual(observe(rule("task_failure_rate", ">", 0.2), snapshot(), m, options), []);
		assert.deepEqual(observe(rule("task_timeout_rate", ">", 0.05), snapshot(), m, { minTasksForRate: 50 }), []);
	});

	it("a critical terminal offline too long is one series per terminal, filtered by matchers", () => {
		const snap = snapshot({
			terminals: {
				online: 0,
				offline: 2,
				disabled: 0,
				criticalOffline: [
					{ id: "t1", since: T0 - 600_000 },
					{ id: "t2", since: T0 - 10_000 }
				]
			}
		});
		const found = observe(rule("terminal_offline_seconds", ">", 300), snap, memory(), options);
		assert.deepEqual(
			found?.map(o => [o.fingerprint, o.value]),
			[["terminalId=t1", 600]]
		);
		const matched = observe(
			rule("terminal_offline_seconds", ">", 0, { matchers: { terminalId: "t2" } }),
			snap,
			memory(),
			options
		);
		assert.deepEqual(
			matched?.map(o => o.labels.terminalId),
			["t2"]
		);
	});

	it("fire problems group by job and outcome within the window", () => {
		const m = memory();
		m.fireProblems.push(
			{ jobId: "j1", outcome: "NO_TERMINAL", at: T0 - 5000 },
			{ jobId: "j1", outcome: "NO_TERMINAL", at: T0 - 1000 }
		);
		m.fireProblems.push({ jobId: "j2", outcome: "MISSED", at: T0 - 900_000 });
		const found = observe(rule("job_fire_problems", ">=", 1, { window: 600 }), snapshot(), m, options);
		assert.deepEqual(
			found?.map(o => [o.fingerprint, o.value]),
			[["jobId=j1,outcome=NO_TERMINAL", 2]]
		);
	});

	it("nodes down, the database and the queue's age", () => {
		const nodes = observe(
			rule("node_down", ">=", 1),
			snapshot({ nodesDown: [{ nodeID: "n2", since: T0 - 1000 }] }),
			memory(),
			options
		);
		assert.deepEqual(
			nodes?.map(o => o.labels),
			[{ nodeID: "n2" }]
		);
		const db = observe(
			rule("database_latency_seconds", ">", 1),
			snapshot({ database: { latencySeconds: 5, error: "connect ECONNREFUSED" } }),
			memory(),
			options
		);
		assert.match(db![0].summary, /unreachable: connect ECONNREFUSED/);
		const degraded = snapshot({
			degraded: [{ nodeID: "d1", reason: "ECONNREFUSED", since: new Date(T0).toISOString(), journalled: 12 }]
		});
		const storage = observe(rule("storage_degraded", ">=", 1), degraded, memory(), options);
		assert.deepEqual(
			storage?.map(o => [o.labels, o.value]),
			[[{ nodeID: "d1" }, 1]]
		);
		assert.match(storage![0].summary, /degraded mode .*ECONNREFUSED \(12 change\(s\) journalled\)/);
		assert.equal(observe(rule("storage_degraded", ">=", 1), snapshot(), memory(), options)?.length, 0);
		assert.equal(observe(rule("storage_degraded", ">=", 1), snapshot({ degraded: null }), memory(), options), null);
		const queue = observe(
			rule("queue_oldest_seconds", ">", 600),
			snapshot({ tasks: { byStatus: { PENDING: 3 }, oldestPendingAt: T0 - 700_000 } }),
			memory(),
			options
		);
		assert.equal(queue?.[0].value, 700);
	});

	it("a part that could not be read is unknown, not a cleared alert", () => {
		assert.equal(observe(rule("terminals_online_drop", ">=", 0.5), snapshot({ terminals: null }), memory(), options), null);
		assert.equal(observe(rule("queue_oldest_seconds", ">", 1), snapshot({ tasks: null }), memory(), options), null);
		assert.equal(observe(rule("database_latency_seconds", ">", 1), snapshot({ database: null }), memory(), options), null);
	});

	it("conditions and fingerprints", () => {
		assert.equal(holds(1, ">", 1), false);
		assert.equal(holds(1, ">=", 1), true);
		assert.equal(holds(0, "<", 1), true);
		assert.equal(holds(1, "<=", 1), true);
		assert.equal(holds(1, "==", 1), true);
		assert.equal(fingerprintOf({ b: "2", a: "1" }), "a=1,b=2");
		assert.equal(fingerprintOf({}), "");
	});
});
