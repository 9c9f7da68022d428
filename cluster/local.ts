/**
 * `npm run cluster`: the cluster of docker-compose.yml as processes on this machine — api, two
 * gateways, two dispatchers, scheduler, cache, monitor and alert — on the machine's NATS and
 * MariaDB, with a line per node as it becomes ready. Ctrl-C stops it; so does
 * `npm run cluster:stop` from another shell. Secrets are generated on the first run and kept in
 * `<dir>/secrets.json`, so tokens and the admin password survive a restart; logs go to
 * `<dir>/logs/<node>.log`.
 *
 *   npm run cluster [-- --nats URL --mysql URL --database NAME --port 3000 --dir data/cluster]
 *   npm run cluster:stop [-- --dir data/cluster]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import mysql from "mysql2/promise";
import { LAYOUT, nodeEnv, type ClusterPlan, type LocalNode } from "./layout.ts";

const TERN = fileURLToPath(new URL("../tern.ts", import.meta.url));
const READY_TIMEOUT_MS = 120_000;

const { values, positionals } = parseArgs({
	allowPositionals: true,
	options: {
		nats: { type: "string", default: process.env.TERN_CLUSTER_NATS ?? "nats://127.0.0.1:4222" },
		mysql: { type: "string", default: process.env.TERN_CLUSTER_MYSQL ?? "mysql://root@127.0.0.1:3306" },
		database: { type: "string", default: "tern_local" },
		port: { type: "string", default: "3000" },
		dir: { type: "string", default: "data/cluster" },
		loglevel: { type: "string", default: "info" }
	}
});
const dir = resolve(values.dir);
const pidFile = join(dir, "cluster.json");

interface Secrets {
	jwtSecret: string;
	adminPassword: string;
}

/** The secrets of this folder's cluster: generated once, then read again. */
function secrets(): Secrets {
	const file = join(dir, "secrets.json");
	if (existsSync(file)) return JSON.parse(readFileSync(file, "utf8")) as Secrets;
	const made: Secrets = {
		jwtSecret: randomBytes(32).toString("base64"),
		adminPassword: process.env.TERN_ADMIN_PASSWORD ?? randomBytes(12).toString("base64url")
	};
	writeFileSync(file, JSON.stringify(made, null, "\t"), { mode: 0o600 });
	return made;
}

async function createDatabase(server: string, name: string): Promise<void> {
	if (!/^\w{1,64}$/.test(name)) throw new Error(`--database '${name}': letters, digits and _ only`);
	const conn = await mysql.createConnection({ uri: server });
	try {
		await conn.query(`CREATE DATABASE IF NOT EXISTS \`${name}\``);
	} finally {
		await conn.end();
	}
}

async function ready(healthPort: number, child: ChildProcess): Promise<void> {
	const deadline = Date.now() + READY_TIMEOUT_MS;
	while (Date.now() < deadline) {
		if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
		const status = await fetch(`http://127.0.0.1:${healthPort}/healthz/ready`).then(
			r => r.status,
			() => 0
		);
		if (status === 200) return;
		await new Promise(done => setTimeout(done, 250));
	}
	throw new Error(`not ready within ${READY_TIMEOUT_MS / 1000} s`);
}

function startNode(plan: ClusterPlan, node: LocalNode, index: number): ChildProcess {
	mkdirSync(join(plan.dataDir, node.id), { recursive: true });
	const log = createWriteStream(join(dir, "logs", `${node.id}.log`), { flags: "a" });
	const child = spawn(process.execPath, [TERN], {
		env: { ...process.env, ...nodeEnv(plan, node, index) },
		stdio: ["ignore", "pipe", "pipe"]
	});
	child.stdout!.pipe(log);
	child.stderr!.pipe(log);
	return child;
}

/** Stops the nodes of the cluster whose PIDs the folder holds (SIGTERM: each drains first). */
async function stop(): Promise<void> {
	if (!existsSync(pidFile)) return console.log(`No cluster is running from ${dir}`);
	const { pids } = JSON.parse(readFileSync(pidFile, "utf8")) as { pids: Record<string, number> };
	// The foreground `npm run cluster` reads this and says nothing of the nodes' exits.
	writeFileSync(pidFile, JSON.stringify({ pids, stopping: true }));
	const alive = (pid: number) => {
		try {
			process.kill(pid, 0);
			return true;
		} catch {
			return false;
		}
	};
	for (const [id, pid] of Object.entries(pids))
		if (alive(pid)) {
			process.kill(pid, "SIGTERM");
			console.log(`${id}: stopping (pid ${pid})`);
		}
	const deadline = Date.now() + 30_000;
	while (Object.values(pids).some(alive) && Date.now() < deadline) await new Promise(done => setTimeout(done, 200));
	for (const [id, pid] of Object.entries(pids))
		if (alive(pid)) {
			process.kill(pid, "SIGKILL");
			console.log(`${id}: killed (did not stop within 30 s)`);
		}
	rmSync(pidFile, { force: true });
	console.log("Cluster stopped");
}

/** `npm run cluster:stop` is under way. */
function stopAsked(): boolean {
	try {
		return (JSON.parse(readFileSync(pidFile, "utf8")) as { stopping?: boolean }).stopping === true;
	} catch {
		return true;
	}
}

async function start(): Promise<void> {
	if (existsSync(pidFile)) throw new Error(`A cluster may be running from ${dir}: npm run cluster:stop first`);
	mkdirSync(join(dir, "logs"), { recursive: true });
	const basePort = Number(values.port);
	if (!Number.isInteger(basePort) || basePort < 1 || basePort > 65000) throw new Error(`--port '${values.port}' is not a port`);
	await createDatabase(values.mysql, values.database);
	const { jwtSecret, adminPassword } = secrets();
	const plan: ClusterPlan = {
		basePort,
		healthBase: basePort + 100,
		natsUrl: values.nats,
		dbUri: `${values.mysql.replace(/\/+$/, "")}/${values.database}`,
		namespace: `local-${values.database}`,
		jwtSecret,
		adminPassword,
		dataDir: dir,
		logLevel: values.loglevel
	};
	const began = Date.now();
	const children = LAYOUT.map((node, i) => startNode(plan, node, i));
	writeFileSync(pidFile, JSON.stringify({ pids: Object.fromEntries(LAYOUT.map((n, i) => [n.id, children[i].pid])) }));
	let stopping = false;
	const stopAll = () => {
		if (stopping) return;
		stopping = true;
		void stop().then(() => process.exit(0));
	};
	process.once("SIGINT", stopAll);
	process.once("SIGTERM", stopAll);
	let count = 0;
	await Promise.all(
		LAYOUT.map(async (node, i) => {
			await ready(plan.healthBase + i, children[i]).catch(err => {
				throw new Error(`${node.id} failed: ${(err as Error).message} (log: ${join(dir, "logs", `${node.id}.log`)})`);
			});
			const port = node.portOffset === null ? "" : ` on port ${basePort + node.portOffset}`;
			console.log(
				`[${++count}/${LAYOUT.length}] ${node.id} ready${port} (${node.services.join(", ")}), ${Date.now() - began} ms`
			);
		})
	).catch(async err => {
		console.error(String((err as Error).message));
		stopping = true;
		await stop();
		throw err;
	});
	let exited = 0;
	for (const [i, child] of children.entries())
		child.once("exit", code => {
			// Every node gone (npm run cluster:stop from another shell, say): this one ends too.
			if (++exited === children.length && !stopping) {
				rmSync(pidFile, { force: true });
				console.log("Every node has stopped");
				process.exit(0);
			}
			if (!stopping && !stopAsked()) console.error(`${LAYOUT[i].id} exited (code ${code}); the others go on`);
		});
	console.log(
		`Tern cluster up: http://localhost:${basePort}/ (admin / ${adminPassword}); terminals on ` +
			`ws://localhost:${basePort + 1} and ws://localhost:${basePort + 2}. Ctrl-C or npm run cluster:stop ends it.`
	);
}

if (positionals[0] === "stop") await stop();
else if (positionals.length === 0) await start().catch(() => (process.exitCode = 1));
else {
	console.error(`Unknown command '${positionals[0]}': npm run cluster, npm run cluster:stop`);
	process.exitCode = 1;
}
