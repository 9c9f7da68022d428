/**
 * Cluster mode for real: six OS processes on NATS and a fresh MariaDB database — api (with auth
 * and terminals), cache, two dispatchers, two gateways — and terminals spread over both
 * gateways that fail over from one to the other. Gateways, dispatchers and the NATS server are
 * killed under load; every task must still complete exactly once.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { rendezvousOwner } from "../../lib/strategies/index.ts";
import { TestCluster, type ClusterTerminal } from "../helpers/cluster.ts";
import { waitFor } from "../helpers/tern.ts";
import { needs } from "../support/servers.ts";

const DISPATCHERS = ["disp-1", "disp-2"];
const NATS_BIN = "/usr/sbin/nats-server";
const NATS_ARGS = ["-a", "127.0.0.1", "-p", "4222", "-js", "-sd", "/var/lib/nats-server", "-l", "/var/log/nats-server.log"];

function natsPids(): number[] {
	try {
		return execFileSync("pgrep", ["-x", "nats-server"], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number);
	} catch {
		return [];
	}
}

/** Starts nats-server exactly as the machine does (a no-op when it runs). */
function startNats(): void {
	execFileSync("start-stop-daemon", ["--start", "--oknodo", "--background", "--exec", NATS_BIN, "--", ...NATS_ARGS]);
}

function stopNats(): void {
	execFileSync("start-stop-daemon", ["--stop", "--oknodo", "--exec", NATS_BIN]);
}

/** Terminal ids `prefix-N` whose tasks and deadlines the given dispatcher owns (rendezvous over both). */
function idsOwnedBy(owner: string, prefix: string, count: number): string[] {
	const ids: string[] = [];
	for (let n = 0; ids.length < count; n++)
		if (rendezvousOwner(`${prefix}-${n}`, DISPATCHERS) === owner) ids.push(`${prefix}-${n}`);
	return ids;
}

function ms(values: number[]): string {
	const sorted = [...values].sort((a, b) => a - b);
	return `min ${sorted[0]} ms, median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted[sorted.length - 1]} ms`;
}

describe("cluster of separate processes on NATS and MariaDB", { skip: needs("mariadb", "nats") }, () => {
	let cluster: TestCluster;
	let gw1: string;
	let gw2: string;
	/** Worker terminals; even ones start on gw-1, odd ones on gw-2. */
	const workers: ClusterTerminal[] = [];

	/**
	 * Submits `count` tasks of `type`, round-robin over `terminals`, at a steady `rate` per second;
	 * `during(i)` runs (awaited) before the i-th submit. Resolves with the task ids in order.
	 */
	async function load(
		type: string,
		count: number,
		rate: number,
		terminals: ClusterTerminal[],
		during?: (i: number) => Promise<void>
	): Promise<{ ids: string[]; retries: number }> {
		const stats = { retries: 0 };
		const started = Date.now();
		const pending: Promise<string>[] = [];
		for (let i = 0; i < count; i++) {
			// Pacing the load at `rate` per second, not waiting for a condition.
			const wait = started + (i * 1000) / rate - Date.now();
			if (wait > 0) await new Promise(resolve => setTimeout(resolve, wait));
			await during?.(i);
			const terminalId = terminals[i % terminals.length].id;
			pending.push(cluster.submit({ terminalId, type, payload: { i }, idempotencyKey: `${type}-${i}` }, stats));
		}
		return { ids: await Promise.all(pending), retries: stats.retries };
	}

	/**
	 * Every task of `type` COMPLETED, once: the database agrees (no extra task, all completed),
	 * and the terminals confirmed each completion exactly once and never got a completed task again.
	 */
	async function assertAllCompletedOnce(type: string, ids: string[], timeoutMs: number): Promise<void> {
		assert.equal(new Set(ids).size, ids.length, "each submit made its own task");
		let completed = 0;
		await waitFor(
			async () => (completed = await cluster.count(type, "COMPLETED")) === ids.length,
			timeoutMs,
			() => `${ids.length} ${type} tasks COMPLETED (have ${completed})`
		).catch(async (err: Error) => {
			// Say which tasks did not finish, and where they stand.
			const stuck: string[] = [];
			for (const id of ids) {
				const task = await cluster.query(id);
				if (task.status !== "COMPLETED") stuck.push(`${id} ${task.status} attempt ${task.attempt}`);
			}
			throw new Error(`${err.message}; not COMPLETED: ${stuck.slice(0, 10).join(", ")}`);
		});
		assert.equal(await cluster.count(type), ids.length, "no task was created twice");
		const byTerminal = new Map<string, number>();
		for (const id of ids) for (const w of workers) if (w.completed.has(id)) byTerminal.set(id, (byTerminal.get(id) ?? 0) + 1);
		const confirmed = [...byTerminal.values()].filter(n => n === 1).length;
		const twice = [...byTerminal.values()].filter(n => n > 1).length;
		const duplicates = workers.flatMap(w => w.duplicateCompletions);
		const duplicateDeliveries = workers.reduce((n, w) => n + w.duplicateDeliveries, 0);
		const received = workers.reduce((n, w) => n + w.received.filter(t => ids.includes(t.taskId)).length, 0);
		console.log(
			`[${type}] submitted ${ids.length}, COMPLETED ${completed}, confirmed by terminals ${confirmed}, ` +
				`pushes received ${received} (redeliveries ${received - ids.length}), ` +
				`duplicate completions ${duplicates.length}, repeated (taskId, attempt) ${duplicateDeliveries}`
		);
		assert.deepEqual(duplicates, [], "no terminal received a task it had completed");
		assert.equal(twice, 0, "no task was completed by two terminals");
		assert.equal(confirmed, ids.length, "every task's completion was confirmed to its terminal");
	}

	before(async () => {
		cluster = await TestCluster.start({
			name: "tern-cluster",
			nodes: [
				{ id: "api", services: ["api", "auth", "terminals", "audit"] },
				{ id: "cache", services: ["cache"] },
				{ id: "disp-1", services: ["dispatcher"] },
				{ id: "disp-2", services: ["dispatcher"] },
				{ id: "gw-1", services: ["gateway"] },
				{ id: "gw-2", services: ["gateway"] }
			]
		});
		gw1 = cluster.node("gw-1").url;
		gw2 = cluster.node("gw-2").url;
		// Eight workers, half owned by each dispatcher, spread over both gateways.
		const ids = [...idsOwnedBy("disp-1", "w", 4), ...idsOwnedBy("disp-2", "w", 4)].sort();
		for (const [n, id] of ids.entries()) {
			const token = await cluster.registerTerminal(id, { concurrency: 8 });
			workers.push(await cluster.connectTerminal(id, token, n % 2 === 0 ? [gw1, gw2] : [gw2, gw1]));
		}
		for (const [n, w] of workers.entries()) assert.equal(await cluster.terminalNode(w.id), n % 2 === 0 ? "gw-1" : "gw-2");
	});

	after(async () => {
		// Whatever happened above, the machine's NATS server runs again (first: the nodes stop
		// cleanly with it).
		if (natsPids().length === 0) startNats();
		await cluster?.close();
	});

	it("delivers tasks through the api to every terminal on both gateways; /client on one gateway follows a task on the other", async () => {
		const { ids } = await load("spread", workers.length * 5, 200, workers);
		await assertAllCompletedOnce("spread", ids, 20_000);
		for (const w of workers) assert.equal(w.completed.size, 5, `${w.id} completed its 5 tasks`);

		// A follower on gw-1; the task's terminal is on gw-2.
		const token = await cluster.registerTerminal("follow-b");
		const taskId = await cluster.submit({ terminalId: "follow-b", type: "followed", idempotencyKey: "followed-1" });
		const follower = await cluster.follow(gw1);
		await follower.subscribe(taskId);
		await waitFor(
			() => follower.statuses(taskId).includes("PENDING"),
			5000,
			() => "the current status at subscribe"
		);
		const terminal = await cluster.connectTerminal("follow-b", token, [gw2, gw1]);
		assert.equal(terminal.connects[0].url, gw2);
		assert.equal(await cluster.terminalNode("follow-b"), "gw-2");
		await waitFor(
			() => follower.statuses(taskId).includes("COMPLETED"),
			10_000,
			() => `COMPLETED on the follower (have ${follower.statuses(taskId).join(", ")})`
		);
		const seen = follower.statuses(taskId);
		assert.deepEqual(
			seen.filter(s => ["DELIVERED", "PROCESSING", "COMPLETED"].includes(s)),
			["DELIVERED", "PROCESSING", "COMPLETED"],
			`status events in order (all: ${seen.join(", ")})`
		);
		assert.equal(seen[0], "PENDING");
		follower.close();
		terminal.close();
	});

	it("survives kill -9 of a gateway under load: its terminals fail over and every task completes exactly once", async () => {
		const onGw1 = workers.filter((_, n) => n % 2 === 0);
		let killedAt = 0;
		let failover: Promise<number[]> | undefined;
		const { ids, retries } = await load("gw-kill", 500, 125, workers, async i => {
			if (i !== 200) return;
			killedAt = Date.now();
			await cluster.node("gw-1").kill();
			// While the load goes on: how long until the api shows each terminal online on gw-2.
			failover = Promise.all(
				onGw1.map(async w => {
					await waitFor(
						async () => (await cluster.terminalNode(w.id)) === "gw-2",
						15_000,
						() => `${w.id} online on gw-2`
					);
					return Date.now() - killedAt;
				})
			);
		});
		const online = await failover!;
		// Every terminal of gw-1 came back, through gw-2.
		for (const w of onGw1) {
			assert.ok(w.connectAfter(killedAt), `${w.id} reconnected`);
			assert.equal(w.connectAfter(killedAt)!.url, gw2, `${w.id} failed over to gw-2`);
		}
		console.log(
			`[gw-kill] terminals of gw-1 reconnected to gw-2 after ${ms(onGw1.map(w => w.connectAfter(killedAt)!.at - killedAt))}; ` +
				`online on gw-2 per the api after ${ms(online)}; submit retries ${retries}`
		);
		await assertAllCompletedOnce("gw-kill", ids, 45_000);

		// The gateway comes back (same node ID, same port) and takes terminals again.
		cluster.node("gw-1").start();
		await cluster.node("gw-1").waitReady();
		const token = await cluster.registerTerminal("back-on-gw1");
		const back = await cluster.connectTerminal("back-on-gw1", token, [gw1, gw2]);
		assert.equal(await cluster.terminalNode("back-on-gw1"), "gw-1");
		const taskId = await cluster.submit({ terminalId: "back-on-gw1", type: "gw-back", idempotencyKey: "gw-back-1" });
		// Pushed at once — the dispatchers know the new gateway — not picked up by a later rescan (5 s).
		await cluster.waitForStatus(taskId, "COMPLETED", 3000);
		back.close();
	});

	it("survives kill -9 of a dispatcher under load: the other takes over its terminals and enforces its deadlines", async () => {
		const victim = "disp-1";
		// Terminals the victim owns: one never acknowledges, one acknowledges and never answers.
		const [silentId] = idsOwnedBy(victim, "silent", 1);
		const [stuckId] = idsOwnedBy(victim, "stuck", 1);
		const silent = await cluster.connectTerminal(silentId, await cluster.registerTerminal(silentId), [gw2, gw1], {
			mode: "silent"
		});
		const stuck = await cluster.connectTerminal(stuckId, await cluster.registerTerminal(stuckId), [gw2, gw1], {
			mode: "stuck"
		});
		const deadlineTasks: string[] = [];
		for (let i = 0; i < 3; i++) {
			deadlineTasks.push(
				await cluster.submit({ terminalId: silentId, type: "dl-ack", ackTimeout: 2, idempotencyKey: `dl-ack-${i}` }),
				await cluster.submit({ terminalId: stuckId, type: "dl-run", timeout: 3, idempotencyKey: `dl-run-${i}` })
			);
		}
		// Their deadlines are in the rows before the victim dies.
		await waitFor(
			() => silent.received.length >= 3 && stuck.received.length >= 3,
			5000,
			() => "deadline tasks delivered"
		);
		for (const id of deadlineTasks.filter((_, n) => n % 2 === 1)) await cluster.waitForStatus(id, "PROCESSING");

		const victimTerminals = workers.filter(w => rendezvousOwner(w.id, DISPATCHERS) === victim);
		assert.equal(victimTerminals.length, 4);
		let killedAt = 0;
		let probe: Promise<string> | undefined;
		const { ids, retries } = await load("disp-kill", 300, 100, workers, async i => {
			if (i !== 50) return;
			for (const id of deadlineTasks) {
				const { status } = await cluster.query(id);
				assert.ok(status === "DELIVERED" || status === "PROCESSING", `deadline task ${id} still running (${status})`);
			}
			killedAt = Date.now();
			await cluster.node(victim).kill();
			// A task for a terminal the victim owned, submitted right after it died (the load goes on).
			probe = cluster.submit({ terminalId: victimTerminals[0].id, type: "disp-probe", idempotencyKey: "disp-probe" });
		});
		const probeDone = Date.parse((await cluster.waitForStatus(await probe!, "COMPLETED", 20_000)).finishedAt!) - killedAt;
		const timedOut: number[] = [];
		for (const id of deadlineTasks) {
			const view = await cluster.waitForStatus(id, "TIMEOUT", 20_000);
			timedOut.push(Date.parse(view.finishedAt!) - killedAt);
		}
		console.log(
			`[disp-kill] a task for a terminal of the dead dispatcher completed ${probeDone} ms after the kill; ` +
				`its deadline tasks reached TIMEOUT after ${ms(timedOut)}; submit retries ${retries}`
		);
		assert.deepEqual(
			silent.received.filter(t => t.taskId === deadlineTasks[0]).map(t => t.attempt),
			[1, 2, 3],
			"the never-acknowledged task was delivered maxDeliveries times, across the takeover"
		);
		await assertAllCompletedOnce("disp-kill", ids, 45_000);
		silent.close();
		stuck.close();

		// The dispatcher comes back and takes its share again.
		cluster.node(victim).start();
		await cluster.node(victim).waitReady();
		const { ids: back } = await load("disp-back", 40, 200, workers);
		await assertAllCompletedOnce("disp-back", back, 20_000);
	});

	it("answers 503 while the cache is gone, and a new cache learns the presence from the gateways", async () => {
		const connectsBefore = workers.map(w => w.connects.length);
		await cluster.node("cache").stop();
		let last: { status: number; body: { type?: string; code?: number } } | undefined;
		await waitFor(
			async () => (last = await cluster.api("GET", "/api/terminals")).status === 503,
			10_000,
			() => `503 from GET /api/terminals without a cache (is ${last?.status} ${JSON.stringify(last?.body)})`
		);
		assert.equal(last!.body.code, 503);
		assert.match(last!.body.type ?? "", /^SERVICE_NOT_(AVAILABLE|FOUND)$/);

		const restartedAt = Date.now();
		cluster.node("cache").start();
		await cluster.node("cache").waitReady();
		for (const w of workers)
			await waitFor(
				async () => (await cluster.terminalNode(w.id)) !== null,
				10_000,
				() => `${w.id} online again`
			);
		console.log(`[cache-restart] every terminal online again ${Date.now() - restartedAt} ms after the cache was started`);
		assert.deepEqual(
			workers.map(w => w.connects.length),
			connectsBefore,
			"the terminals stayed connected: the presence came from the gateways"
		);
		const { ids } = await load("cache-back", 40, 200, workers);
		await assertAllCompletedOnce("cache-back", ids, 20_000);
	});

	it("recovers by itself when the NATS server restarts", async () => {
		assert.ok(natsPids().length > 0, "nats-server runs");
		const stoppedAt = Date.now();
		stopNats();
		await waitFor(
			() => natsPids().length === 0,
			10_000,
			() => "nats-server to stop"
		);
		const unready = new Map<string, number>();
		// Down for 2 s at least, as the scenario says, and until every node has said it is not ready.
		const downUntil = stoppedAt + 2000;
		await waitFor(
			async () => {
				for (const node of cluster.nodes.values())
					if (!unready.has(node.id) && (await node.readiness()) !== 200) unready.set(node.id, Date.now() - stoppedAt);
				return unready.size === cluster.nodes.size && Date.now() >= downUntil;
			},
			15_000,
			() => `every node not ready while NATS is down (not ready: ${[...unready.keys()].join(", ") || "none"})`
		);
		startNats();
		const startedAt = Date.now();
		await waitFor(
			() => natsPids().length > 0,
			10_000,
			() => "nats-server to start"
		);
		const readyAfter = new Map<string, number>();
		await waitFor(
			async () => {
				for (const node of cluster.nodes.values())
					if (!readyAfter.has(node.id) && (await node.readiness()) === 200)
						readyAfter.set(node.id, Date.now() - startedAt);
				return readyAfter.size === cluster.nodes.size;
			},
			30_000,
			() => `every node ready (ready: ${[...readyAfter.keys()].join(", ")})`
		);
		await cluster.waitFormed();
		for (const w of workers)
			await waitFor(
				async () => (await cluster.terminalNode(w.id)) !== null,
				20_000,
				() => `${w.id} online again`
			);
		const onlineAfter = Date.now() - startedAt;
		console.log(
			`[nats-restart] not ready while down: ${[...unready].map(([id, t]) => `${id} (${t} ms)`).join(", ") || "none"}; ` +
				`ready again after the restart: ${[...readyAfter].map(([id, t]) => `${id} ${t} ms`).join(", ")}; ` +
				`every terminal online within ${onlineAfter} ms`
		);
		assert.deepEqual(
			[...unready.keys()].sort(),
			[...cluster.nodes.keys()].sort(),
			"every node reported not ready while its transporter had no server"
		);
		const { ids, retries } = await load("after-nats", 80, 200, workers);
		console.log(`[after-nats] submit retries ${retries}`);
		await assertAllCompletedOnce("after-nats", ids, 30_000);
	});
});
