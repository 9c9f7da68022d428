/**
 * The evaluation loop without a broker: a caller that answers like the services would, two
 * evaluators that share the rules (each rule judged by exactly one), and what each tick hands to
 * `alert.evaluate`.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Logger } from "moleculer";
import type { AlertRuleView, EvaluateParams, FleetSummary } from "../../../../lib/contracts.ts";
import { Evaluator } from "../../../../services/monitor/evaluator.ts";
import { Sampler } from "../../../../services/monitor/sampler.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;

function rules(n: number): AlertRuleView[] {
	return Array.from({ length: n }, (_, i) => ({
		id: `rule-${i}`,
		name: `rule ${i}`,
		builtin: false,
		enabled: true,
		severity: "warning",
		metric: "terminals_online",
		condition: "<",
		threshold: 1,
		window: 300,
		for: 0,
		matchers: {},
		labels: {},
		channels: [],
		repeatInterval: 0,
		escalation: null,
		createdAt: "",
		updatedAt: ""
	}));
}

class FakeCluster {
	readonly evaluated: EvaluateParams[] = [];
	fleet: FleetSummary | null = { online: 0, offline: 2, disabled: 0, criticalOffline: [] };
	readonly ruleList: AlertRuleView[];
	constructor(ruleList: AlertRuleView[]) {
		this.ruleList = ruleList;
	}
	async call(action: string, params?: unknown): Promise<unknown> {
		switch (action) {
			case "terminals.summary":
				if (!this.fleet) throw new Error("terminals not available");
				return this.fleet;
			case "dispatcher.stats":
				return { tasks: {}, oldestPendingAt: null };
			case "alert.activeRules":
				return this.ruleList;
			case "alert.evaluate":
				this.evaluated.push(params as EvaluateParams);
				return { firing: (params as EvaluateParams).active.length, notified: 0 };
			default:
				throw new Error(`unexpected call ${action}`);
		}
	}
}

function evaluator(cluster: FakeCluster, self: string, replicas: string[]): Evaluator {
	const sampler = new Sampler(cluster, () => null, { dbPingTimeout: 100, callTimeout: 100 }, quiet);
	const e = new Evaluator(cluster, self, sampler, { minTasksForRate: 1 }, quiet);
	e.ownership.set(replicas);
	return e;
}

describe("monitor evaluator", () => {
	it("two replicas judge every rule, each rule once", async () => {
		const cluster = new FakeCluster(rules(40));
		const a = evaluator(cluster, "node-a", ["node-a", "node-b"]);
		const b = evaluator(cluster, "node-b", ["node-a", "node-b"]);
		await Promise.all([a.tick(), b.tick()]);
		const ids = cluster.evaluated.map(e => e.ruleId).sort();
		assert.deepEqual(
			ids,
			rules(40)
				.map(r => r.id)
				.sort()
		);
		assert.ok(cluster.evaluated.length === 40);
		// Both replicas got some of them.
		const byA = (await a.tick()).evaluated;
		assert.ok(byA > 0 && byA < 40, `node-a judged ${byA} of 40`);
	});

	it("a replica alone judges them all; the series that hold are handed over", async () => {
		const cluster = new FakeCluster(rules(3));
		const outcome = await evaluator(cluster, "solo", ["solo"]).tick();
		assert.deepEqual(outcome, { rules: 3, evaluated: 3, firing: 3 });
		assert.equal(cluster.evaluated[0].active[0].summary, "0 terminals online");
	});

	it("when the fleet cannot be read, its rules wait: nothing is handed over (nothing resolves)", async () => {
		const cluster = new FakeCluster(rules(2));
		cluster.fleet = null;
		const outcome = await evaluator(cluster, "solo", ["solo"]).tick();
		assert.equal(outcome.evaluated, 0);
		assert.equal(cluster.evaluated.length, 0);
	});

	it("counts submits, ends and their kinds from the status events", () => {
		const e = evaluator(new FakeCluster([]), "solo", ["solo"]);
		const now = Date.now();
		const at = new Date(now).toISOString();
		e.recordStatuses(
			[
				{ taskId: "1", status: "PENDING", attempt: 0, terminalId: null, at, submitted: true },
				{ taskId: "1", status: "DELIVERED", attempt: 1, terminalId: "t", at },
				{ taskId: "1", status: "TIMEOUT", attempt: 1, terminalId: "t", at },
				{ taskId: "2", status: "DELIVERED", attempt: 1, terminalId: "t", at, submitted: true },
				{ taskId: "2", status: "COMPLETED", attempt: 1, terminalId: "t", at }
			],
			now
		);
		const counts = e.memory.counts;
		assert.deepEqual(
			["submitted", "ended", "completed", "failed", "timedOut"].map(k => counts.sum(k as never, 60, now)),
			[2, 2, 1, 0, 1]
		);
	});
});
