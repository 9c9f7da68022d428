/**
 * The real agent as a child process (`node agent/cli.ts …`, or an installed `tern-agent`) against a TestTern, with its log
 * collected for waits and for the message of a failed assertion; a proxy in front of Tern that
 * can refuse WebSocket upgrades or be pointed at a restarted Tern; and a look at the process
 * table.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http, { type IncomingMessage, type Server } from "node:http";
import net, { type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Duplex } from "node:stream";
import { waitFor, type TestTern } from "../helpers/tern.ts";

export const CLI = fileURLToPath(new URL("../../agent/cli.ts", import.meta.url));

const started = new Set<AgentProcess>();

export interface AgentStartOptions {
	/** Extra CLI options. */
	args?: string[];
	/** Reuse a data dir (restart tests). */
	dataDir?: string;
	/** The URL the agent is given (a proxy's); Tern's own otherwise. */
	url?: string;
	env?: NodeJS.ProcessEnv;
	/** Wait until Tern shows the terminal online. @defaultValue true */
	waitOnline?: boolean;
	/**
	 * The program that runs the agent, with its first arguments: Node on agent/cli.ts otherwise.
	 * Another program (npx) runs in a process group of its own, and signals go to the whole group.
	 */
	command?: string[];
	cwd?: string;
}

export class AgentProcess {
	readonly child: ChildProcess;
	readonly dataDir: string;
	readonly terminalId: string;
	output = "";
	exitCode: number | null = null;
	private readonly exited: Promise<number | null>;

	private readonly group: boolean;

	private constructor(child: ChildProcess, dataDir: string, terminalId: string, group: boolean) {
		this.child = child;
		this.group = group;
		this.dataDir = dataDir;
		this.terminalId = terminalId;
		child.stdout!.on("data", chunk => (this.output += chunk));
		child.stderr!.on("data", chunk => (this.output += chunk));
		this.exited = new Promise(resolve =>
			child.once("exit", code => {
				this.exitCode = code;
				started.delete(this);
				resolve(code);
			})
		);
	}

	static async start(
		tern: TestTern,
		terminalId: string,
		token: string,
		options: AgentStartOptions = {}
	): Promise<AgentProcess> {
		const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), "tern-agent-test-"));
		const [program, ...first] = options.command ?? [process.execPath, CLI];
		const args = [
			...first,
			"--url",
			options.url ?? tern.url,
			"--data-dir",
			dataDir,
			"--reconnect-initial",
			"0.1",
			"--reconnect-max",
			"0.5",
			"--pull-interval",
			"0.2",
			"--kill-grace",
			"0.5",
			"--drain-timeout",
			"1",
			"--log-level",
			"debug",
			...(options.args ?? [])
		];
		const child = spawn(program, args, {
			cwd: options.cwd,
			detached: options.command !== undefined,
			// The token in the environment, as the agent's docs say: `--token` would show in ps.
			env: { ...process.env, TERN_TOKEN: token, ...options.env },
			stdio: ["ignore", "pipe", "pipe"]
		});
		const agent = new AgentProcess(child, dataDir, terminalId, options.command !== undefined);
		started.add(agent);
		if (options.waitOnline ?? true) {
			try {
				await tern.waitForTerminal(terminalId, "online", 10_000);
			} catch (err) {
				throw new Error(`${(err as Error).message}\nagent output:\n${agent.output}`, { cause: err });
			}
		}
		return agent;
	}

	get pid(): number {
		return this.child.pid!;
	}

	get running(): boolean {
		return this.exitCode === null && this.child.exitCode === null && this.child.signalCode === null;
	}

	/** Resolves once the agent's log matches. */
	async waitForLog(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
		let match: RegExpMatchArray | null = null;
		await waitFor(
			() => (match = this.output.match(pattern)) !== null,
			timeoutMs,
			() => `agent log to match ${pattern}; log so far:\n${this.output.slice(-4000)}`
		);
		return match!;
	}

	/** Count of log lines matching. */
	count(pattern: RegExp): number {
		return this.output.split("\n").filter(line => pattern.test(line)).length;
	}

	/** Signals the agent and waits for it to exit; its exit code. */
	async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 20_000): Promise<number | null> {
		if (!this.running) return this.exitCode;
		if (this.group) process.kill(-this.child.pid!, signal);
		else this.child.kill(signal);
		let timer: NodeJS.Timeout | undefined;
		const code = await Promise.race([
			this.exited,
			new Promise<never>((_, reject) => {
				timer = setTimeout(
					() => reject(new Error(`agent did not exit after ${signal}:\n${this.output.slice(-3000)}`)),
					timeoutMs
				);
			})
		]);
		clearTimeout(timer);
		return code;
	}

	/** Stops the agent (SIGTERM: its tasks are killed after a second; SIGKILL if it hangs) and removes its data dir unless kept. */
	async dispose(keepData = false): Promise<void> {
		if (this.running) await this.stop("SIGTERM").catch(() => this.stop("SIGKILL"));
		if (!keepData) rmSync(this.dataDir, { recursive: true, force: true });
	}
}

/** Kills every agent a suite started and has not stopped (after hooks). */
export async function disposeAgents(): Promise<void> {
	await Promise.all([...started].map(agent => agent.dispose()));
}

/** Processes whose command line contains `marker` (other than ps and this test). */
export function processesWith(marker: string): string[] {
	const ps = spawnSync("ps", ["-eo", "pid,pgid,stat,args"], { encoding: "utf8" });
	return ps.stdout
		.split("\n")
		.filter(line => line.includes(marker) && !/\bps -eo\b/.test(line))
		.filter(line => !/^\s*\d+\s+\d+\s+Z/.test(line));
}

/**
 * An HTTP proxy in front of Tern: REST passes through; WebSocket upgrades pass through too unless
 * `refuseUpgrades` (then 403, as a proxy that does not do WebSockets answers). `target` can move
 * to a restarted Tern on another port; `down` refuses everything.
 */
export class TernProxy {
	server!: Server;
	port!: number;
	targetPort: number;
	refuseUpgrades = false;
	upgradesRefused = 0;
	upgradesPassed = 0;
	private readonly tunnels = new Set<Socket | Duplex>();

	constructor(targetPort: number) {
		this.targetPort = targetPort;
	}

	get url(): string {
		return `http://127.0.0.1:${this.port}`;
	}

	async start(): Promise<this> {
		this.server = http.createServer((req, res) => {
			const upstream = http.request(
				{ host: "127.0.0.1", port: this.targetPort, method: req.method, path: req.url, headers: req.headers },
				reply => {
					res.writeHead(reply.statusCode ?? 502, reply.headers);
					reply.pipe(res);
				}
			);
			upstream.on("error", err => {
				if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" });
				res.end(
					JSON.stringify({ name: "ProxyError", message: `Bad gateway: ${err.message}`, code: 502, type: "BAD_GATEWAY" })
				);
			});
			req.pipe(upstream);
		});
		this.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
		await new Promise<void>(resolve => this.server.listen(0, "127.0.0.1", resolve));
		this.port = (this.server.address() as AddressInfo).port;
		return this;
	}

	private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
		socket.on("error", () => undefined);
		if (this.refuseUpgrades) {
			this.upgradesRefused++;
			socket.end(
				"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 23\r\nConnection: close\r\n\r\nWebSockets not allowed\n"
			);
			return;
		}
		this.upgradesPassed++;
		const upstream = net.connect(this.targetPort, "127.0.0.1", () => {
			const lines = [`${req.method} ${req.url} HTTP/1.1`];
			for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
			upstream.write(lines.join("\r\n") + "\r\n\r\n");
			if (head.length > 0) upstream.write(head);
			upstream.pipe(socket);
			socket.pipe(upstream);
		});
		upstream.on("error", () => socket.destroy());
		socket.on("close", () => upstream.destroy());
		upstream.on("close", () => socket.destroy());
		this.tunnels.add(socket);
		this.tunnels.add(upstream);
		socket.on("close", () => this.tunnels.delete(socket));
		upstream.on("close", () => this.tunnels.delete(upstream));
	}

	/** Cuts every WebSocket that goes through the proxy (as a proxy restart would). */
	dropTunnels(): void {
		for (const tunnel of this.tunnels) tunnel.destroy();
		this.tunnels.clear();
	}

	async close(): Promise<void> {
		this.dropTunnels();
		this.server.closeAllConnections();
		await new Promise(resolve => this.server.close(resolve));
	}
}
