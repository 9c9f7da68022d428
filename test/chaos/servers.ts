/**
 * The chaos suite's own servers, in a temporary folder: a nats-server with JetStream and a
 * MariaDB (mariadbd on a data dir made by mariadb-install-db), each on a free port, so that
 * stopping, freezing and restarting them never touches the machine's shared servers.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { freePort, reachable } from "../support/net.ts";
import { waitFor } from "../support/wait.ts";

/** One server process that can be stopped, frozen, thawed and started again on the same port and data. */
export class OwnServer {
	readonly name: string;
	readonly port: number;
	private readonly command: () => [string, string[]];
	private child: ChildProcess | null = null;

	constructor(name: string, port: number, command: () => [string, string[]]) {
		this.name = name;
		this.port = port;
		this.command = command;
	}

	get pid(): number {
		if (!this.child?.pid) throw new Error(`${this.name} is not running`);
		return this.child.pid;
	}

	async start(): Promise<void> {
		const [program, args] = this.command();
		const child = spawn(program, args, { stdio: ["ignore", "ignore", "pipe"] });
		let err = "";
		child.stderr!.on("data", chunk => (err = (err + String(chunk)).slice(-2000)));
		this.child = child;
		await waitFor(
			async () => {
				if (child.exitCode !== null) throw new Error(`${this.name} exited: ${err}`);
				return reachable(`tcp://127.0.0.1:${this.port}`, 500);
			},
			60_000,
			() => `${this.name} to listen on ${this.port}: ${err}`
		);
	}

	/** `kill -9` or a clean stop; resolves once the process is gone. */
	async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
		const child = this.child;
		if (!child || child.exitCode !== null || child.signalCode !== null) return;
		const gone = new Promise(resolve => child.once("exit", resolve));
		child.kill(signal);
		await gone;
		this.child = null;
	}

	freeze(): void {
		process.kill(this.pid, "SIGSTOP");
	}

	thaw(): void {
		process.kill(this.pid, "SIGCONT");
	}
}

function which(program: string, fallback: string): string {
	const found = spawnSync("sh", ["-c", `command -v ${program}`], { encoding: "utf8" }).stdout.trim();
	return found || fallback;
}

export async function startNats(dir: string): Promise<OwnServer> {
	const store = join(dir, "nats");
	mkdirSync(store, { recursive: true });
	const port = await freePort();
	const server = new OwnServer("nats-server", port, () => [
		which("nats-server", "/usr/sbin/nats-server"),
		["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", store]
	]);
	await server.start();
	return server;
}

export async function startMariaDb(dir: string): Promise<OwnServer> {
	const data = join(dir, "mariadb");
	mkdirSync(data, { recursive: true });
	const asRoot = process.getuid?.() === 0;
	const install = spawnSync(
		which("mariadb-install-db", "/usr/bin/mariadb-install-db"),
		["--no-defaults", `--datadir=${data}`, "--auth-root-authentication-method=normal", ...(asRoot ? ["--user=root"] : [])],
		{ encoding: "utf8" }
	);
	if (install.status !== 0) throw new Error(`mariadb-install-db failed: ${install.stderr || install.stdout}`);
	const port = await freePort();
	const server = new OwnServer("mariadbd", port, () => [
		which("mariadbd", "/usr/sbin/mariadbd"),
		[
			"--no-defaults",
			`--datadir=${data}`,
			`--port=${port}`,
			"--bind-address=127.0.0.1",
			`--socket=${join(dir, "mariadb.sock")}`,
			"--skip-grant-tables",
			"--innodb-flush-log-at-trx-commit=1",
			...(asRoot ? ["--user=root"] : [])
		]
	]);
	await server.start();
	return server;
}
