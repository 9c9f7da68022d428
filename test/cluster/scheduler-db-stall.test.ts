/**
 * A scheduler whose database stops answering past its lease misses no fire of a `catch_up` job.
 * The replica reaches MariaDB through a proxy that stalls (connections kept open, nothing carried):
 * its timers go on wanting to fire the job, the claims wait, its lease runs out. When the database
 * answers again those claims are refused (their epoch is over), the replica takes a new epoch and
 * arms its jobs again from the ledger, whose misfire policy fires the seconds it missed: the
 * ledger has every second once.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { TestCluster } from "../helpers/cluster.ts";
import { MYSQL_SERVER } from "../support/node-process.ts";
import { needs } from "../support/servers.ts";
import { TcpProxy } from "../support/tcp-proxy.ts";
import { waitFor } from "../support/wait.ts";

describe("a scheduler whose database hangs past its lease", { skip: needs("mariadb", "nats") }, () => {
	let cluster: TestCluster;
	let proxy: TcpProxy;

	before(async () => {
		const server = new URL(MYSQL_SERVER);
		proxy = await TcpProxy.start(server.hostname, Number(server.port || 3306));
		cluster = await TestCluster.start({
			name: "sched_stall",
			nodes: [
				{
					id: "core",
					services: [
						"api",
						"auth",
						"audit",
						"terminals",
						"cache",
						"dispatcher",
						"gateway",
						"monitor",
						"alert",
						"scripts"
					]
				},
				{
					id: "sched",
					services: ["scheduler"],
					env: { DB_URI: `mysql://root@127.0.0.1:${proxy.port}/{database}` }
				}
			]
		});
	});
	after(async () => {
		proxy?.restore();
		await cluster?.close();
		await proxy?.close();
	});

	const fires = (jobId: string) =>
		cluster.db.query<{ fireTime: number | string; outcome: string }>(
			"SELECT fireTime, outcome FROM job_fires WHERE jobId = ? ORDER BY fireTime",
			[jobId]
		);

	it("fires every second it missed once the database is back", async () => {
		await cluster.registerTerminal("stall-edge");
		const created = await cluster.api("POST", "/api/jobs", {
			name: "every-second",
			schedule: { cron: "* * * * * *" },
			misfirePolicy: "catch_up",
			overlapPolicy: "allow",
			task: { terminalId: "stall-edge", type: "tick" }
		});
		assert.equal(created.status, 201, JSON.stringify(created.body));
		const jobId = created.body.id as string;
		await waitFor(
			async () => (await fires(jobId)).length >= 2,
			15_000,
			() => "the job to fire"
		);
		const sched = cluster.node("sched");
		proxy.stall();
		const stalledAt = Date.now();
		// Past the lease (6 s), as the database itself sees it.
		await waitFor(
			async () => {
				const [row] = await cluster.db.query<{ expiresAt: number }>(
					"SELECT expiresAt FROM node_leases WHERE holder = ?",
					["scheduler@sched"]
				);
				return Number(row.expiresAt) < Date.now() - 1000;
			},
			30_000,
			() => "the scheduler's lease to run out"
		);
		proxy.restore();
		const restoredAt = Date.now();
		await waitFor(
			() => sched.output.some(line => /lease lost/i.test(line)),
			20_000,
			() => `the scheduler to say its lease was lost:\n${sched.output.slice(-10).join("\n")}`
		);
		// Every second up to a little after the database came back has its row.
		const until = Math.floor(restoredAt / 1000) * 1000 + 2000;
		await waitFor(
			async () => (await fires(jobId)).some(f => Number(new Date(f.fireTime)) >= until),
			20_000,
			() => "the job to fire after the database came back"
		);
		const ledger = await fires(jobId);
		const times = ledger.map(f => Number(new Date(f.fireTime)));
		assert.equal(new Set(times).size, times.length, "each second once");
		const missing: string[] = [];
		for (let at = times[0]; at <= until; at += 1000) if (!times.includes(at)) missing.push(new Date(at).toISOString());
		assert.deepEqual(missing, [], `no second missed (stalled ${new Date(stalledAt).toISOString()})`);
		assert.ok(
			ledger.some(f => f.outcome === "CAUGHT_UP"),
			"the seconds of the stall were caught up"
		);
	});
});
