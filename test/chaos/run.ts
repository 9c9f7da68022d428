/**
 * `npm run chaos [-- --quick]`: a cluster of separate processes (api, two gateways, two
 * dispatchers, two schedulers, cache, monitor) on a NATS and a MariaDB of its own, steady load
 * from terminals that fail over between the gateways and deduplicate by task id, then each fault
 * in turn, and after each a check of every task submitted during it: completed, lost (accepted,
 * never final), run twice (completed by two terminals, or pushed again to one that completed it),
 * stuck (DELIVERED or PROCESSING past its deadline), the time until tasks completed again, and
 * what the consistency check repaired. The table goes to stdout and to test/chaos/results/.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startMariaDb, startNats, type OwnServer } from "./servers.ts";
import { Storm, peakRssKiB } from "./storm.ts";
import { inBatches } from "../support/rest.ts";

const quick = process.argv.includes("--quick");
const dir = mkdtempSync(join(tmpdir(), "tern-chaos-"));
const nats = await startNats(dir);
const mariadb = await startMariaDb(dir);
process.env.TERN_TEST_NATS = `nats://127.0.0.1:${nats.port}`;
process.env.TERN_TEST_MYSQL = `mysql://root@127.0.0.1:${mariadb.port}`;
// Read after the servers are known: node-process reads the two variables when it loads.
const { TestCluster } = await import("../helpers/cluster.ts");
type Cluster = Awaited<ReturnType<typeof TestCluster.start>>;
type Terminal = Awaited<ReturnType<Cluster["connectTerminal"]>>;

interface Row {
	fault: string;
	submitted: number;
	completed: number;
	lost: number;
	runTwice: number;
	stuck: number;
	recoverSeconds: number;
	repaired: number;
}

const nodes = [
	{ id: "api", services: ["api", "auth", "terminals", "scripts", "audit", "alert"] },
	{ id: "gateway-1", services: ["gateway"] },
	{ id: "gateway-2", services: ["gateway"] },
	{ id: "dispatcher-1", services: ["dispatcher"] },
	{ id: "dispatcher-2", services: ["dispatcher"] },
	{ id: "scheduler-1", services: ["scheduler"] },
	{ id: "scheduler-2", services: ["scheduler"] },
	{ id: "cache", services: ["cache"] },
	{ id: "monitor", services: ["monitor"] }
];

const log = (line: string) => process.stderr.write(`[chaos] ${line}\n`);
const pause = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** Submits `rate` tasks a second of `type` to the terminals in turn until stopped; the ids accepted. */
function submitter(cluster: Cluster, type: string, terminalIds: string[], rate: number) {
	const accepted: string[] = [];
	let stopped = false;
	let n = 0;
	const running = (async () => {
		const inFlight = new Set<Promise<void>>();
		while (!stopped) {
			const i = n++;
			const body = {
				terminalId: terminalIds[i % terminalIds.length],
				type,
				payload: { i },
				timeout: 20,
				ackTimeout: 5,
				idempotencyKey: `${type}-${i}`
			};
			const p: Promise<void> = cluster.submit(body, undefined, 120_000).then(
				id => void accepted.push(id),
				err => void log(`${type}-${i} not accepted: ${(err as Error).message}`)
			);
			inFlight.add(p);
			void p.finally(() => {
				inFlight.delete(p);
			});
			await pause(1000 / rate);
		}
		await Promise.all(inFlight);
	})();
	return {
		accepted,
		async stop() {
			stopped = true;
			await running;
		}
	};
}

/** Every task of `type`: id → status, from the list pages. */
async function statuses(cluster: Cluster, type: string): Promise<Map<string, { status: string; updatedAt: string }>> {
	const found = new Map<string, { status: string; updatedAt: string }>();
	for (let page = 1; ; page++) {
		const reply = await cluster.api<{ rows: { taskId: string; status: string; updatedAt: string }[]; totalPages: number }>(
			"GET",
			`/api/tasks?type=${type}&pageSize=500&page=${page}`
		);
		for (const row of reply.body.rows ?? []) found.set(row.taskId, row);
		if (page >= (reply.body.totalPages ?? 0)) return found;
	}
}

const FINAL = new Set(["COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "EXPIRED"]);

async function phase(cluster: Cluster, terminals: Terminal[], fault: string, inject: () => Promise<void>): Promise<Row> {
	const type = `chaos-${fault.replace(/\W+/g, "-")}`;
	const load = submitter(
		cluster,
		type,
		terminals.map(t => t.id),
		quick ? 15 : 30
	);
	await pause(2000);
	const faultAt = Date.now();
	log(`${fault}: injecting`);
	// Time to recover: from the fault until a task submitted as it began has completed, probed on
	// every terminal (whichever dispatcher owns it) while the fault lasts.
	const probes = terminals.map(async (t, i) => {
		const probe = await cluster.submit(
			{ terminalId: t.id, type: `${type}-probe`, idempotencyKey: `${type}-probe-${i}` },
			undefined,
			120_000
		);
		await cluster.waitForStatus(probe, "COMPLETED", 120_000);
	});
	await inject();
	await Promise.all(probes);
	const recoverSeconds = (Date.now() - faultAt) / 1000;
	await cluster.waitFormed(120_000);
	await pause(quick ? 2000 : 5000);
	await load.stop();
	// Every task had its deadline (ack 5 s, run 20 s): after that and a sweep, none may still be held.
	const deadline = Date.now() + 60_000;
	let seen = await statuses(cluster, type);
	while ([...seen.values()].some(r => !FINAL.has(r.status)) && Date.now() < deadline) {
		await pause(1000);
		seen = await statuses(cluster, type);
	}
	const report = await cluster.api<{ repaired: number }>("POST", "/api/system/reconcile", {});
	if (report.status !== 200) throw new Error(`reconcile: ${report.status} ${JSON.stringify(report.body)}`);
	const repaired = report.body.repaired;
	const completedBy = new Map<string, number>();
	for (const t of terminals) for (const id of t.completed) completedBy.set(id, (completedBy.get(id) ?? 0) + 1);
	const ids = load.accepted;
	const row: Row = {
		fault,
		submitted: ids.length,
		completed: ids.filter(id => seen.get(id)?.status === "COMPLETED").length,
		lost: ids.filter(id => !seen.has(id)).length,
		runTwice:
			ids.filter(id => (completedBy.get(id) ?? 0) > 1).length +
			terminals.reduce((n, t) => n + t.duplicateCompletions.filter(id => ids.includes(id)).length, 0),
		stuck: ids.filter(id => seen.has(id) && !FINAL.has(seen.get(id)!.status)).length,
		recoverSeconds: Math.round(recoverSeconds * 10) / 10,
		repaired
	};
	log(`${fault}: ${JSON.stringify(row)}`);
	return row;
}

/**
 * The reconnect storm: `count` raw-WebSocket terminals on gateway-1, the gateway killed and
 * started again; a task for each of the first 500 submitted as it comes back. The row's name
 * carries how long until every terminal was back, the new gateway's peak RSS and the busy answers.
 */
async function stormRow(cluster: Cluster, count: number): Promise<Row> {
	const started = Date.now();
	const registered = await inBatches(
		Array.from({ length: count }, (_, i) => `storm-${i}`),
		50,
		async id => ({ id, token: await cluster.registerTerminal(id) })
	);
	log(`storm: ${count} terminals registered in ${Date.now() - started} ms`);
	const gateway = cluster.node("gateway-1");
	const storm = new Storm(registered, () => gateway.url.replace(/^http/, "ws"));
	const allOnline = async (what: string) => {
		const deadline = Date.now() + 300_000;
		while (storm.stats.online < count) {
			if (Date.now() > deadline) throw new Error(`storm: ${storm.stats.online}/${count} online ${what}`);
			await pause(200);
		}
	};
	storm.start();
	await allOnline("at first");
	log(`storm: ${count} online; killing gateway-1`);
	const killedAt = Date.now();
	await gateway.kill();
	gateway.start();
	await gateway.waitReady(120_000);
	const targets = registered.slice(0, 500).map(t => t.id);
	const ids = await inBatches(targets, 50, (id, i) =>
		cluster.submit(
			{ terminalId: id, type: "chaos-storm", payload: { i }, timeout: 60, ackTimeout: 30, idempotencyKey: `storm-${i}` },
			undefined,
			120_000
		)
	);
	await allOnline("after the restart");
	const backSeconds = (Date.now() - killedAt) / 1000;
	const rssMiB = Math.round(peakRssKiB(gateway.pid) / 1024);
	const deadline = Date.now() + 90_000;
	let seen = await statuses(cluster, "chaos-storm");
	while ([...seen.values()].some(r => !FINAL.has(r.status)) && Date.now() < deadline) {
		await pause(1000);
		seen = await statuses(cluster, "chaos-storm");
	}
	const busy = storm.stats.busyRefusals;
	storm.close();
	return {
		fault: `reconnect storm: ${count} terminals back in ${backSeconds.toFixed(1)} s, gateway peak RSS ${rssMiB} MiB, ${busy} busy answers, ${storm.stats.redelivered} pushed again after their result (deduplicated)`,
		submitted: ids.length,
		completed: ids.filter(id => seen.get(id)?.status === "COMPLETED").length,
		lost: ids.filter(id => !seen.has(id)).length,
		runTwice: [...storm.stats.runs.values()].filter(n => n > 1).length,
		stuck: ids.filter(id => seen.has(id) && !FINAL.has(seen.get(id)!.status)).length,
		recoverSeconds: Math.round(backSeconds * 10) / 10,
		repaired: 0
	};
}

/**
 * The job that fired every second through every fault: each second one ledger row (none missed,
 * by `catch_up`), each fired row one task, no task run twice, none stuck.
 */
async function cronRow(cluster: Cluster, jobId: string, terminals: Terminal[], began: number): Promise<Row> {
	const fires = await cluster.db.query<{ fireTime: string | number; outcome: string; taskIds: string | null }>(
		"SELECT fireTime, outcome, taskIds FROM job_fires WHERE jobId = ? ORDER BY fireTime",
		[jobId]
	);
	const seen = await statuses(cluster, "chaos-cron");
	const firstAt = Number(new Date(fires[0]?.fireTime ?? 0));
	const lastAt = Number(new Date(fires.at(-1)?.fireTime ?? 0));
	const slots = fires.length === 0 ? 0 : Math.round((lastAt - firstAt) / 1000) + 1;
	const taskIds = fires.flatMap(f => (f.taskIds ? (JSON.parse(f.taskIds) as string[]) : []));
	const completedBy = new Map<string, number>();
	for (const t of terminals) for (const id of t.completed) completedBy.set(id, (completedBy.get(id) ?? 0) + 1);
	log(`cron: ${fires.length} fires over ${slots} seconds since ${new Date(began).toISOString()}, ${seen.size} tasks`);
	const times = new Set(fires.map(f => Number(new Date(f.fireTime))));
	for (let at = firstAt; at <= lastAt; at += 1000)
		if (!times.has(at)) log(`cron: no ledger row for ${new Date(at).toISOString()}`);
	for (const f of fires) if (f.outcome !== "completed") log(`cron: ${new Date(f.fireTime).toISOString()} ${f.outcome}`);
	return {
		fault: `cron every second, through all of the above (${slots - fires.length} missed)`,
		submitted: fires.length,
		completed: taskIds.filter(id => seen.get(id)?.status === "COMPLETED").length,
		lost: taskIds.filter(id => !seen.has(id)).length + (slots - fires.length),
		// More tasks than fires is a fire run twice; so is one completed by two terminals.
		runTwice: Math.max(0, seen.size - taskIds.length) + taskIds.filter(id => (completedBy.get(id) ?? 0) > 1).length,
		stuck: taskIds.filter(id => seen.has(id) && !FINAL.has(seen.get(id)!.status)).length,
		recoverSeconds: 0,
		repaired: 0
	};
}

function freeze(pid: number, ms: number): Promise<void> {
	process.kill(pid, "SIGSTOP");
	return pause(ms).then(() => void process.kill(pid, "SIGCONT"));
}

async function restartServer(server: OwnServer, signal: "SIGTERM" | "SIGKILL", downMs: number): Promise<void> {
	await server.stop(signal);
	await pause(downMs);
	await server.start();
}

function faults(cluster: Cluster): [string, () => Promise<void>][] {
	const kill = (id: string) => async () => {
		await cluster.node(id).kill();
		cluster.node(id).start();
		await cluster.node(id).waitReady(120_000);
	};
	const all: [string, () => Promise<void>][] = [
		["kill -9 dispatcher", kill("dispatcher-1")],
		["kill -9 gateway", kill("gateway-1")],
		["SIGSTOP dispatcher past its lease", () => freeze(cluster.node("dispatcher-2").pid, 8000)],
		["SIGSTOP scheduler past its lease", () => freeze(cluster.node("scheduler-1").pid, 8000)],
		["nats-server restart", () => restartServer(nats, "SIGTERM", 2000)],
		["MariaDB hangs (SIGSTOP)", () => freeze(mariadb.pid, 8000)]
	];
	if (quick) return all;
	return [
		...all,
		["kill -9 api", kill("api")],
		["kill -9 scheduler", kill("scheduler-2")],
		["kill -9 cache", kill("cache")],
		["kill -9 monitor", kill("monitor")],
		["MariaDB stop/start", () => restartServer(mariadb, "SIGTERM", 8000)]
	];
}

function table(rows: Row[]): string {
	const head = "| fault | submitted | completed | lost | run twice | stuck | fault → all completing again, s | repaired |";
	const rule = "|---|---:|---:|---:|---:|---:|---:|---:|";
	const lines = rows.map(
		r =>
			`| ${r.fault} | ${r.submitted} | ${r.completed} | ${r.lost} | ${r.runTwice} | ${r.stuck} | ${r.recoverSeconds} | ${r.repaired} |`
	);
	return [head, rule, ...lines].join("\n");
}

let cluster: Cluster | undefined;
let failed = false;
try {
	// Nine processes starting together on a small machine, migrating a fresh database: time enough.
	cluster = await TestCluster.start({ name: "chaos", nodes, readyTimeoutMs: 120_000 });
	const gateways = [cluster.node("gateway-1").url, cluster.node("gateway-2").url];
	const terminals: Terminal[] = [];
	for (let i = 0; i < 4; i++) {
		const id = `chaos-${i}`;
		const token = await cluster.registerTerminal(id, { concurrency: 8 });
		terminals.push(await cluster.connectTerminal(id, token, i % 2 ? [...gateways].reverse() : gateways));
	}
	const job = await cluster.api<{ id: string }>("POST", "/api/jobs", {
		name: "chaos-tick",
		schedule: { cron: "* * * * * *" },
		task: { terminalId: terminals[0].id, type: "chaos-cron", timeout: 20, ackTimeout: 5 },
		misfirePolicy: "catch_up",
		overlapPolicy: "allow"
	});
	if (job.status !== 201) throw new Error(`job: ${job.status} ${JSON.stringify(job.body)}`);
	const rows: Row[] = [];
	const began = Date.now();
	for (const [fault, inject] of faults(cluster)) rows.push(await phase(cluster, terminals, fault, inject));
	rows.push(await stormRow(cluster, quick ? 1000 : 10_000));
	await cluster.api("POST", `/api/jobs/${job.body.id}/pause`, {});
	rows.push(await cronRow(cluster, job.body.id, terminals, began));
	const text = table(rows);
	process.stdout.write(`\n${text}\n`);
	const out = fileURLToPath(new URL("results/", import.meta.url));
	mkdirSync(out, { recursive: true });
	const name = quick ? "quick" : "full";
	writeFileSync(join(out, `${name}.json`), JSON.stringify({ at: new Date().toISOString(), quick, rows }, null, "\t") + "\n");
	writeFileSync(join(out, `${name}.md`), `${text}\n`);
	failed = rows.some(r => r.lost > 0 || r.runTwice > 0 || r.stuck > 0);
	if (failed) log("FAILED: a task was lost, run twice or stuck");
} catch (err) {
	failed = true;
	log(`FAILED: ${(err as Error).stack ?? err}`);
} finally {
	await cluster?.close().catch(() => undefined);
	await nats.stop("SIGKILL");
	await mariadb.stop("SIGKILL");
	rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
