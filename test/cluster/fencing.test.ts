/**
 * A frozen scheduler that wakes up acts on nothing another replica has taken meanwhile. Of two
 * scheduler replicas, the one firing a per-second job is stopped with SIGSTOP past its lease; the
 * other ends that lease and takes the job over; the job is paused while the first is still
 * frozen; the first is resumed with SIGCONT. Its timers wake before it hears anything and want
 * to fire the job: the database refuses the claims of its ended epoch, it takes a new epoch,
 * and no fire is claimed after the pause — by anyone.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { TestCluster } from "../helpers/cluster.ts";
import { waitFor } from "../support/wait.ts";
import { needs } from "../support/servers.ts";

interface Fire {
	fireTime: number | string;
	node: string;
	outcome: string;
	epoch: number | string | null;
}

describe("fencing a frozen scheduler", { skip: needs("mariadb", "nats") }, () => {
	let cluster: TestCluster;

	before(async () => {
		cluster = await TestCluster.start({
			name: "fencing",
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
				{ id: "sched-a", services: ["scheduler"] },
				{ id: "sched-b", services: ["scheduler"] }
			]
		});
	});
	after(() => cluster?.close());

	const fires = (jobId: string) =>
		cluster.db.query<Fire>("SELECT fireTime, node, outcome, epoch FROM job_fires WHERE jobId = ? ORDER BY fireTime", [jobId]);
	const epochOf = async (nodeID: string) =>
		Number(
			(
				await cluster.db.query<{ epoch: number }>("SELECT epoch FROM node_leases WHERE holder = ?", [
					`scheduler@${nodeID}`
				])
			)[0]?.epoch ?? 0
		);

	it("refuses the claims of an ended epoch and claims nothing after the job was paused", async () => {
		await cluster.registerTerminal("fence-edge");
		const created = await cluster.api("POST", "/api/jobs", {
			name: "every-second",
			schedule: { cron: "* * * * * *" },
			misfirePolicy: "skip",
			task: { terminalId: "fence-edge", type: "tick" }
		});
		assert.equal(created.status, 201, JSON.stringify(created.body));
		const jobId = created.body.id as string;
		await waitFor(
			async () => (await fires(jobId)).length >= 2,
			15_000,
			() => "the job to fire"
		);
		const owner = (await fires(jobId)).at(-1)!.node;
		const other = owner === "sched-a" ? "sched-b" : "sched-a";
		const frozenEpoch = await epochOf(owner);
		const frozen = cluster.node(owner);

		process.kill(frozen.pid, "SIGSTOP");
		try {
			// The other replica notices (heartbeats), ends the frozen one's lease and fires the job.
			await waitFor(
				async () => (await fires(jobId)).some(f => f.node === other),
				20_000,
				() => `${other} to take the job`
			);
			const paused = await cluster.api("POST", `/api/jobs/${jobId}/pause`);
			assert.equal(paused.status, 200, JSON.stringify(paused.body));
			const pausedAt = Date.now();
			// Past the frozen replica's lease, by its own length and then some.
			await waitFor(
				async () => {
					const [row] = await cluster.db.query<{ expiresAt: number }>(
						"SELECT expiresAt FROM node_leases WHERE holder = ?",
						[`scheduler@${owner}`]
					);
					return Number(row.expiresAt) < pausedAt;
				},
				20_000,
				() => `the lease of ${owner} to be over`
			);
			process.kill(frozen.pid, "SIGCONT");
			// It wakes, finds its lease gone and takes a new epoch.
			await waitFor(
				async () => (await epochOf(owner)) > frozenEpoch,
				20_000,
				() => `${owner} to take a new epoch`
			);
			await waitFor(
				() => frozen.output.some(line => /lease lost/i.test(line)),
				10_000,
				() => `${owner} to say its lease was lost:\n${frozen.output.slice(-10).join("\n")}`
			);
			const ledger = await fires(jobId);
			const late = ledger.filter(f => Number(f.fireTime) > pausedAt + 1000 && f.outcome !== "PAUSED");
			assert.deepEqual(late, [], "no fire after the pause");
			const times = ledger.map(f => Number(f.fireTime));
			assert.equal(new Set(times).size, times.length, "each fire time once");
			for (const fire of ledger.filter(f => f.node === owner && Number(f.fireTime) > pausedAt))
				assert.notEqual(Number(fire.epoch), frozenEpoch, "nothing written under the ended epoch after the pause");
		} finally {
			if (frozen.running) process.kill(frozen.pid, "SIGCONT");
		}
	});
});
