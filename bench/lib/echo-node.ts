/**
 * The far side of bench/floors.ts, in a process of its own so that its CPU is not the caller's:
 *
 *   node bench/lib/echo-node.ts nats <url> <subject>          # answers every request with its data
 *   node bench/lib/echo-node.ts moleculer <url> <namespace>   # a broker with an `echo.echo` action
 *   node bench/lib/echo-node.ts ws <url> <clients>            # WebSocket clients acking every push
 *
 * Started with an IPC channel: sends `{ ready: true }` once it serves, exits on SIGTERM or when
 * the channel closes (its parent is gone).
 */
import { ServiceBroker } from "moleculer";
import { connect } from "nats";
import WebSocket from "ws";

const [mode, url, arg] = process.argv.slice(2);

async function nats(subject: string): Promise<() => Promise<void>> {
	const nc = await connect({ servers: url, name: "tern-bench-echo" });
	nc.subscribe(subject, { callback: (err, msg) => err || msg.respond(msg.data) });
	await nc.flush();
	return () => nc.close();
}

async function moleculer(namespace: string): Promise<() => Promise<void>> {
	const broker = new ServiceBroker({
		namespace,
		nodeID: `echo-${process.pid}`,
		transporter: { type: "NATS", options: { url } },
		serializer: "JSON",
		logger: false
	});
	broker.createService({
		name: "echo",
		actions: {
			echo: { handler: (ctx: { params: unknown }) => ctx.params }
		}
	});
	await broker.start();
	return () => broker.stop();
}

/** `clients` connections; each answers a push `{"id":n,…}` with `{"ack":n}`. */
async function ws(clients: number): Promise<() => Promise<void>> {
	const sockets = await Promise.all(
		Array.from(
			{ length: clients },
			(_, i) =>
				new Promise<WebSocket>((resolve, reject) => {
					const socket = new WebSocket(`${url}?client=${i}`);
					socket.on("message", data => {
						const { id } = JSON.parse(String(data)) as { id: number };
						socket.send(`{"ack":${id}}`);
					});
					socket.once("open", () => resolve(socket));
					socket.once("error", reject);
				})
		)
	);
	return async () => {
		for (const socket of sockets) socket.terminate();
	};
}

const modes: Record<string, (arg: string) => Promise<() => Promise<void>>> = {
	nats,
	moleculer,
	ws: clients => ws(Number(clients))
};
if (!modes[mode] || !url || !arg) {
	console.error("usage: node bench/lib/echo-node.ts nats|moleculer|ws <url> <subject|namespace|clients>");
	process.exit(2);
}

const stop = await modes[mode](arg);
const exit = () => {
	stop().finally(() => process.exit(0));
};
process.once("SIGTERM", exit);
process.once("disconnect", exit);
process.send?.({ ready: true });
