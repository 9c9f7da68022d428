/**
 * Alerts in a cluster of OS processes on NATS and MariaDB: two monitor replicas notify once;
 * a node killed with SIGKILL raises "node down" and its return resolves it; a monitor that dies
 * hands its rules to the other; a monitor cut off from the database (a TCP proxy between them)
 * raises "database unreachable", and resolves once the network is back.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestCluster } from "../helpers/cluster.ts";
import { HttpReceiver, type ReceivedRequest } from "../support/receivers.ts";
import { TcpProxy } from "../support/tcp-proxy.ts";
import { MYSQL_SERVER } from "../support/node-process.ts";
import type { AlertRuleView, AlertView, SignalName } from "../../lib/contracts.ts";
import { needs } from "../support/servers.ts";

const SECRET = "cluster-webhook-secret";

describe("alerts in a cluster", { skip: needs("mariadb", "nats") }, () => {
	let cluster: TestCluster;
	let hook: HttpReceiver;
	let proxy: TcpProxy;
	let rules: AlertRuleView[];

	const forRule = (ruleId: string, status?: string) => (requests: ReceivedRequest[]) =>
		requests.filter(r => r.body?.alert?.ruleId === ruleId && (!status || r.body.status === status));

	function rule(metric: SignalName): AlertRuleView {
		const found = rules.find(r => r.builtin && r.metric === metric);
		assert.ok(found, `a built-in rule on ${metric}`);
		return found;
	}

	async function firing(ruleId: string): Promise<AlertView[]> {
		return (await cluster.api<{ rows: AlertView[] }>("GET", `/api/alerts?status=firing&ruleId=${ruleId}`)).body.rows;
	}

	before(async () => {
		hook = await HttpReceiver.start(SECRET);
		const server = new URL(MYSQL_SERVER);
		proxy = await TcpProxy.start(server.hostname, Number(server.port || 3306));
		const viaProxy = `mysql://${server.username || "root"}@127.0.0.1:${proxy.port}/{database}`;
		cluster = await TestCluster.start({
			name: "alerting",
			nodes: [
				{
					id: "core",
					services: ["api", "auth", "audit", "terminals", "cache", "dispatcher", "gateway", "scheduler", "alert"]
				},
				{ id: "watch-a", services: ["monitor"], env: { DB_URI: viaProxy } },
				{ id: "watch-b", services: ["monitor"] },
				{ id: "spare", services: ["cache"] }
			]
		});
		const channel = await cluster.api("POST", "/api/alert-channels", {
			name: "cluster-hook",
			type: "webhook",
			config: { url: hook.url, secret: SECRET }
		});
		assert.equal(channel.status, 201, JSON.stringify(channel.body));
		rules = (await cluster.api<AlertRuleView[]>("GET", "/api/alert-rules")).body;
		for (const r of rules) {
			const on = r.metric === "node_down" || r.metric === "database_latency_seconds";
			const reply = await cluster.api(
				"PUT",
				`/api/alert-rules/${r.id}`,
				on ? { enabled: true, channels: [channel.body.id] } : { enabled: false }
			);
			assert.equal(reply.status, 200, JSON.stringify(reply.body));
		}
		const config = await cluster.api("PUT", "/api/system/config", { evaluateInterval: 200 });
		assert.equal(config.status, 200, JSON.stringify(config.body));
	});
	after(async () => {
		await cluster?.close();
		await proxy?.close();
		await hook?.close();
	});

	it("a node killed with SIGKILL is down: two monitors, one notification; its return resolves it", async () => {
		const r = rule("node_down");
		await cluster.node("spare").kill();
		await hook.until(got => forRule(r.id, "firing")(got).length > 0, 20_000, "the node-down webhook");
		const [alert] = await firing(r.id);
		assert.equal(alert.labels.nodeID, "spare");
		assert.equal(alert.severity, "critical");
		// Until the node is back both monitors tick five times a second: a second notice would be seen below.

		cluster.node("spare").start();
		await cluster.node("spare").waitReady();
		await hook.until(got => forRule(r.id, "resolved")(got).length > 0, 20_000, "the node-down resolved webhook");
		const all = forRule(r.id)(hook.requests).filter(q => q.body.alert.labels.nodeID === "spare");
		assert.deepEqual(
			all.map(q => q.body.status),
			["firing", "resolved"],
			"one firing, one resolved, whatever the number of monitors"
		);
		for (const q of all) assert.equal(q.signed, true);
	});

	it("a monitor cut off from the database raises database-unreachable once the other monitor is gone", async () => {
		const down = rule("node_down");
		const db = rule("database_latency_seconds");
		// watch-b dies: its rules move to watch-a, which also reports it down.
		await cluster.node("watch-b").kill();
		await hook.until(
			r => forRule(down.id, "firing")(r).some(q => q.body.alert.labels.nodeID === "watch-b"),
			20_000,
			"watch-b down"
		);
		proxy.cut();
		await hook.until(got => forRule(db.id, "firing")(got).length > 0, 20_000, "the database webhook");
		const [alert] = await firing(db.id);
		assert.match(alert.summary, /unreachable/);
		proxy.restore();
		await hook.until(got => forRule(db.id, "resolved")(got).length > 0, 30_000, "the database resolved webhook");
		assert.deepEqual(
			forRule(db.id)(hook.requests).map(q => q.body.status),
			["firing", "resolved"]
		);
	});
});
