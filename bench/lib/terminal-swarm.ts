/**
 * A child process of the gateway benchmark (bench/gateway.ts): many socket.io terminals, as the
 * agent connects them (websocket transport only, the client's default engine.io pings, a
 * `heartbeat` every 30 s), each bound to one of a few local addresses so that tens of
 * thousands of connections to one port do not run out of ephemeral ports. A `task` is answered
 * at once with its `ack` (with a reply callback, as the agent does); nothing else.
 *
 * The parent speaks to it over the IPC channel: SwarmCommand in, SwarmReply out.
 */
import { performance } from "node:perf_hooks";
import { io, type Socket } from "socket.io-client";

export interface SwarmTerminal {
	id: string;
	token: string;
}

export type SwarmRequest =
	/** Connects these terminals, `parallel` handshakes at a time; answers once every one is connected or failed. */
	| { cmd: "connect"; url: string; terminals: SwarmTerminal[]; localAddresses: string[]; parallel: number }
	/** Closes every connection but the first `keep`. */
	| { cmd: "trim"; keep: number }
	/** The ids of the terminals connected. */
	| { cmd: "ids" }
	| { cmd: "stats" }
	| { cmd: "close" };

export type SwarmCommand = SwarmRequest & { id: number };

export interface SwarmStats {
	connected: number;
	tasks: number;
	ackErrors: number;
	disconnects: number;
	errorSamples: string[];
	cpuUs: number;
}

export interface ConnectReport {
	connected: number;
	failed: number;
	elapsedMs: number;
	errorSamples: string[];
}

export type SwarmReply = { id: number; ok: true; result?: unknown } | { id: number; ok: false; error: string };

const HEARTBEAT_MS = 30_000;
const sockets: { id: string; socket: Socket }[] = [];
const stats = { tasks: 0, ackErrors: 0, disconnects: 0, errorSamples: [] as string[] };
let closing = false;

function sample(message: string): void {
	if (stats.errorSamples.length < 10) stats.errorSamples.push(message.slice(0, 300));
}

function connectOne(url: string, terminal: SwarmTerminal, localAddress: string): Promise<Socket> {
	return new Promise((resolve, reject) => {
		const socket = io(`${url}/terminal`, {
			auth: { token: terminal.token },
			transports: ["websocket"],
			reconnection: false,
			forceNew: true,
			timeout: 60_000,
			localAddress
		} as Parameters<typeof io>[1]);
		socket.once("connect", () => {
			socket.off("connect_error");
			// Spread over the interval, as terminals that connected at different times would be.
			const beat = setTimeout(() => {
				if (socket.connected) socket.emit("heartbeat");
				const timer = setInterval(() => socket.connected && socket.emit("heartbeat"), HEARTBEAT_MS);
				socket.once("disconnect", () => clearInterval(timer));
			}, Math.random() * HEARTBEAT_MS);
			socket.once("disconnect", reason => {
				clearTimeout(beat);
				if (!closing) {
					stats.disconnects++;
					sample(`${terminal.id} disconnected: ${reason}`);
				}
			});
			resolve(socket);
		});
		socket.once("connect_error", err => {
			socket.close();
			reject(err);
		});
		socket.on("task", (task: { taskId: string; attempt: number }) => {
			stats.tasks++;
			socket.emit(
				"ack",
				{ taskId: task.taskId, attempt: task.attempt },
				(reply: { ok: boolean; error?: { type?: string } }) => {
					if (!reply?.ok) {
						stats.ackErrors++;
						sample(`ack refused: ${JSON.stringify(reply?.error ?? reply)}`);
					}
				}
			);
		});
	});
}

async function connectAll(command: Extract<SwarmCommand, { cmd: "connect" }>): Promise<ConnectReport> {
	const started = performance.now();
	let next = 0;
	let failed = 0;
	const errorSamples: string[] = [];
	const worker = async () => {
		while (next < command.terminals.length) {
			const i = next++;
			const address = command.localAddresses[(sockets.length + i) % command.localAddresses.length];
			try {
				const terminal = command.terminals[i];
				sockets.push({ id: terminal.id, socket: await connectOne(command.url, terminal, address) });
			} catch (err) {
				failed++;
				if (errorSamples.length < 5) errorSamples.push(`${command.terminals[i].id}: ${(err as Error).message}`);
			}
		}
	};
	await Promise.all(Array.from({ length: Math.min(command.parallel, command.terminals.length) }, worker));
	return { connected: command.terminals.length - failed, failed, elapsedMs: performance.now() - started, errorSamples };
}

async function run(command: SwarmCommand): Promise<unknown> {
	switch (command.cmd) {
		case "connect":
			return connectAll(command);
		case "trim": {
			closing = true;
			for (const { socket } of sockets.splice(command.keep)) socket.close();
			closing = false;
			return { connected: sockets.length };
		}
		case "ids":
			return sockets.filter(s => s.socket.connected).map(s => s.id);
		case "stats": {
			const cpu = process.cpuUsage();
			return {
				connected: sockets.filter(s => s.socket.connected).length,
				...stats,
				cpuUs: cpu.user + cpu.system
			} satisfies SwarmStats;
		}
		case "close":
			closing = true;
			for (const { socket } of sockets.splice(0)) socket.close();
			setImmediate(() => process.exit(0));
			return null;
	}
}

process.on("message", (message: SwarmCommand) => {
	run(message).then(
		result => process.send?.({ id: message.id, ok: true, result } satisfies SwarmReply),
		(err: unknown) =>
			process.send?.({ id: message.id, ok: false, error: String((err as Error)?.stack ?? err) } satisfies SwarmReply)
	);
});
// The parent went away: nothing left to serve.
process.on("disconnect", () => process.exit(0));
