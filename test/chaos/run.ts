/**
 * `npm run chaos [-- --quick] [-- --only <text>]`: a cluster of separate processes (api, two
 * gateways, two dispatchers, two schedulers, cache, monitor) on a NATS and a MariaDB of its own,
 * steady load from terminals of every kind (socket.io and raw WebSocket terminals that fail over
 * between the gateways, a pull terminal) that deduplicate by task id, then each fault in turn, and
 * after each a check of every task submitted during it (test/chaos/report.ts). `--only` runs the
 * faults whose name holds the text. gateway-2 and dispatcher-2 reach NATS through a proxy that the
 * partition fault stalls.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startMariaDb, startNats, type OwnServer } from "./servers.ts";
import { Storm, peakRssKiB } from "./storm.ts";
import { PullTerminal, WsTerminal, type LoadTerminal } from "./steady.ts";
import { FINAL, failures, judge, publish, runTwiceDetail, type Row, type Seen } from "./report.ts";
import { inBatches } from "../support/rest.ts";
import { TcpProxy } from "../support/tcp-proxy.ts";

const quick = process.argv.includes("--quick");
const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
const dir = mkdtempSync(join(tmpdir(), "tern-chaos-"));
const nats = await startNats(dir);
const mariadb = await startMariaDb(dir);
const natsProxy = await TcpProxy.start("127.0.0.1", nats.port);
process.env.TERN_TEST_NATS = `nats://127.0.0.1:${nats.port}`;
process.env.TERN_TEST_MYSQL = `mysql://root@127.0.0.1:${mariadb.port}`;
// Read after the servers are known: node-process reads the two variables when it loads, so
// nothing imported above may load it.
const { TestCluster, NATS_URL } = await import("../helpers/cluster.ts");
if (NATS_URL !== process.env.TERN_TEST_NATS) throw new Error(`the nodes would use ${NATS_URL}, not the suite's NATS`);
type Cluster = Awaited<ReturnType<typeof TestCluster.start>>;

const behindProxy = { TRANSPORTER: `nats://127.0.0.1:${natsProxy.port}` };
const nodes = [
	{ id: "api", services: ["api", "auth", "terminals", "scripts", "audit", "alert"] },
	{ id: "gateway-1", services: ["gateway"] },
	{ id: "gateway-2", services: ["gateway"], env: behindProxy },
	{ id: "dispatcher-1", services: ["dispatcher"] },
	{ id: "dispatcher-2", services: ["dispatcher"], env: behindProxy },
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
async function statuses(cluster: Cluster, type: string): Promise<Seen> {
	const found: Seen = new Map();
	for (let page = 1; ; page++) {
		const reply = await cluster.api<{ rows: { taskId: string; status: string }[]; totalPages: number }>(
			"GET",
			`/api/tasks?type=${type}&pageSize=500&page=${page}`
		);
		for (const row of reply.body.rows ?? []) found.set(row.taskId, row);
		if (page >= (reply.body.totalPages ?? 0)) return found;
	}
}

/** The tasks of `type` once none is held any more, or after `waitMs`. */
async function settled(cluster: Cluster, type: string, waitMs: number): Promise<Seen> {
	const deadline = Date.now() + waitMs;
	let seen = await statuses(cluster, type);
	while ([...seen.values()].some(r => !FINAL.has(r.status)) && Date.now() < deadline) {
		await pause(1000);
		seen = await statuses(cluster, type);
	}
	return seen;
}

const pushedAgain = (terminals: LoadTerminal[]) => terminals.reduce((n, t) => n + t.pushedAgain, 0);

async function phase(cluster: Cluster, terminals: LoadTerminal[], fault: string, inject: () => Promise<void>): Promise<Row> {
	const type = `chaos-${fault.replace(/\W+/g, "-")}`;
	const pushedBefore = pushedAgain(terminals);
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
	// every terminal (whichever dispatcher owns it, whichever gateway it is on) while the fault lasts.
	const probes = terminals.map(async (t, i) => {
		const probe = await cluster.submit(
			{ terminalId: t.id, type: `${type}-probe`, idempotencyKey: `${type}-probe-${i}` },
			undefined,
			120_000
		);
		const acceptedMs = Date.now() - faultAt;
		await cluster.waitForStatus(probe, "COMPLETED", 120_000);
		const doneMs = Date.now() - faultAt;
		log(`${fault}: probe on ${t.id} accepted after ${acceptedMs} ms, completed after ${doneMs} ms`);
		return doneMs;
	});
	await inject();
	// The fault may still last when the probes are done (a frozen node not needed any more).
	const recoverSeconds = Math.max(...(await Promise.all(probes))) / 1000;
	await cluster.waitFormed(120_000);
	await pause(quick ? 2000 : 5000);
	await load.stop();
	// Every task had its deadline (ack 5 s, run 20 s): after that and a sweep, none may still be held.
	const seen = await settled(cluster, type, 60_000);
	const report = await cluster.api<{ repaired: number }>("POST", "/api/system/reconcile", {});
	if (report.status !== 200) throw new Error(`reconcile: ${report.status} ${JSON.stringify(report.body)}`);
	const row: Row = {
		fault,
		...judge(load.accepted, seen, terminals),
		recoverSeconds: Math.round(recoverSeconds * 10) / 10,
		repaired: report.body.repaired,
		pushedAgain: pushedAgain(terminals) - pushedBefore
	};
	log(`${fault}: ${JSON.stringify(row)}`);
	for (const taskId of load.accepted.filter(id => !seen.has(id))) log(`lost: ${taskId}, accepted and not in the database`);
	for (const { taskId, how } of runTwiceDetail(load.accepted, terminals)) {
		const history = await cluster.api("GET", `/api/tasks/${taskId}`);
		log(`run twice: ${taskId}, ${how}: ${JSON.stringify(history.body)}`);
	}
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
	const seen = await settled(cluster, "chaos-storm", 90_000);
	const { busyRefusals, redelivered } = storm.stats;
	storm.close();
	return {
		fault: `reconnect storm: ${count} terminals back in ${backSeconds.toFixed(1)} s, gateway peak RSS ${rssMiB} MiB, ${busyRefusals} busy answers`,
		...judge(ids, seen, []),
		// Raw WebSocket terminals: no answer to an ack tells them an attempt was theirs.
		runTwice: null,
		recoverSeconds: Math.round(backSeconds * 10) / 10,
		repaired: 0,
		pushedAgain: redelivered
	};
}

/**
 * The job that fired every second through every fault: each second one ledger row (none missed,
 * by `catch_up`), each fired row one task, no task run twice, none stuck.
 */
async function cronRow(cluster: Cluster, jobId: string, terminals: LoadTerminal[]): Promise<Row> {
	const fires = await cluster.db.query<{ fireTime: string | number; outcome: string; taskIds: string | null }>(
		"SELECT fireTime, outcome, taskIds FROM job_fires WHERE jobId = ? ORDER BY fireTime",
		[jobId]
	);
	const seen = await settled(cluster, "chaos-cron", 60_000);
	const firstAt = Number(new Date(fires[0]?.fireTime ?? 0));
	const lastAt = Number(new Date(fires.at(-1)?.fireTime ?? 0));
	const slots = fires.length === 0 ? 0 : Math.round((lastAt - firstAt) / 1000) + 1;
	const taskIds = fires.flatMap(f => (f.taskIds ? (JSON.parse(f.taskIds) as string[]) : []));
	const times = new Set(fires.map(f => Number(new Date(f.fireTime))));
	for (let at = firstAt; at <= lastAt; at += 1000)
		if (!times.has(at)) log(`cron: no ledger row for ${new Date(at).toISOString()}`);
	const caughtUp = fires.filter(f => f.outcome === "CAUGHT_UP").length;
	for (const f of fires)
		if (f.outcome !== "FIRED" && f.outcome !== "CAUGHT_UP") log(`cron: ${new Date(f.fireTime).toISOString()} ${f.outcome}`);
	const checks = judge(taskIds, seen, terminals);
	return {
		fault: `cron every second through all of the above: ${slots} seconds, ${slots - fires.length} missed, ${caughtUp} caught up late`,
		...checks,
		submitted: fires.length,
		lost: checks.lost + (slots - fires.length),
		// More tasks than fires is a fire run twice.
		runTwice: (checks.runTwice ?? 0) + Math.max(0, seen.size - taskIds.length),
		recoverSeconds: 0,
		repaired: 0,
		pushedAgain: 0
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

/** gateway-2 and dispatcher-2 cut off from NATS (packets dropped, not refused) for `ms`. */
async function partition(ms: number): Promise<void> {
	natsProxy.stall();
	await pause(ms);
	natsProxy.restore();
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
		["partition: gateway-2 and dispatcher-2 cut off from NATS for 15 s", () => partition(15_000)],
		["MariaDB hangs (SIGSTOP)", () => freeze(mariadb.pid, 8000)]
	];
	const full: [string, () => Promise<void>][] = [
		...all,
		["kill -9 api", kill("api")],
		["kill -9 scheduler", kill("scheduler-2")],
		["kill -9 cache", kill("cache")],
		["kill -9 monitor", kill("monitor")],
		["MariaDB stop/start", () => restartServer(mariadb, "SIGTERM", 8000)]
	];
	return (quick ? all : full).filter(([name]) => !only || name.includes(only));
}

/** Four socket.io terminals, a raw WebSocket one and a pull one; gateway-2 first for half of them. */
async function steadyTerminals(cluster: Cluster): Promise<LoadTerminal[]> {
	const gateways = [cluster.node("gateway-1").url, cluster.node("gateway-2").url];
	const terminals: LoadTerminal[] = [];
	for (let i = 0; i < 4; i++) {
		const id = `chaos-${i}`;
		const token = await cluster.registerTerminal(id, { concurrency: 8 });
		terminals.push(await cluster.connectTerminal(id, token, i % 2 ? [...gateways].reverse() : gateways));
	}
	const ws = new WsTerminal(
		"chaos-ws",
		await cluster.registerTerminal("chaos-ws", { concurrency: 8 }),
		[...gateways].reverse()
	);
	await ws.start();
	const pull = new PullTerminal("chaos-pull", await cluster.registerTerminal("chaos-pull"), () => cluster.apiNode.url);
	pull.start();
	return [...terminals, ws, pull];
}

let cluster: Cluster | undefined;
let terminals: LoadTerminal[] = [];
let failed = false;
try {
	// Nine processes starting together on a small machine, migrating a fresh database: time enough.
	cluster = await TestCluster.start({ name: "chaos", nodes, readyTimeoutMs: 120_000 });
	log(`cluster of ${nodes.length} processes ready`);
	terminals = await steadyTerminals(cluster);
	log(`${terminals.length} steady terminals connected`);
	const job = await cluster.api<{ id: string }>("POST", "/api/jobs", {
		name: "chaos-tick",
		schedule: { cron: "* * * * * *" },
		task: { terminalId: terminals[0].id, type: "chaos-cron", timeout: 20, ackTimeout: 5 },
		misfirePolicy: "catch_up",
		overlapPolicy: "allow"
	});
	if (job.status !== 201) throw new Error(`job: ${job.status} ${JSON.stringify(job.body)}`);
	const rows: Row[] = [];
	for (const [fault, inject] of faults(cluster)) rows.push(await phase(cluster, terminals, fault, inject));
	if (!only || "reconnect storm".includes(only)) rows.push(await stormRow(cluster, quick ? 1000 : 10_000));
	await cluster.api("POST", `/api/jobs/${job.body.id}/pause`, {});
	rows.push(await cronRow(cluster, job.body.id, terminals));
	publish(rows, only ? undefined : quick ? "quick" : "full");
	failed = failures(rows).length > 0;
	if (failed) log("FAILED: a task was lost, run twice or stuck");
} catch (err) {
	failed = true;
	log(`FAILED: ${(err as Error).stack ?? err}`);
} finally {
	for (const t of terminals) t.close();
	await cluster?.close().catch(() => undefined);
	await natsProxy.close();
	await nats.stop("SIGKILL");
	await mariadb.stop("SIGKILL");
	rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
