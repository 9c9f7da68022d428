/**
 * Ports and reachability, for the suites and the scripts that start servers: nothing here reads
 * the environment, so a script may import it before it decides which servers the nodes use.
 */
import { connect, createServer } from "node:net";

/** A free TCP port (closed again at once; fine on one machine). */
export function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address() as { port: number };
			server.close(() => resolve(port));
		});
	});
}

/** Whether something accepts TCP connections at the host and port of `url`. */
export function reachable(url: string, timeoutMs = 2000): Promise<boolean> {
	const { hostname, port } = new URL(url);
	return new Promise(resolve => {
		const socket = connect({ host: hostname.replace(/^\[|\]$/g, ""), port: Number(port) });
		const done = (ok: boolean) => {
			socket.destroy();
			resolve(ok);
		};
		socket.setTimeout(timeoutMs, () => done(false));
		socket.once("connect", () => done(true));
		socket.once("error", () => done(false));
	});
}
