/**
 * A TCP proxy on port 0 that a test can cut and restore: the network between a node and a
 * server (the database) failing, while the server itself keeps running for everyone else.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

export class TcpProxy {
	port = 0;
	private server!: Server;
	private readonly sockets = new Set<Socket>();
	private open = true;

	static async start(host: string, port: number): Promise<TcpProxy> {
		const proxy = new TcpProxy();
		proxy.server = createServer(client => {
			if (!proxy.open) return void client.destroy();
			const upstream = connect({ host, port });
			for (const socket of [client, upstream]) {
				proxy.sockets.add(socket);
				socket.once("close", () => proxy.sockets.delete(socket));
				socket.on("error", () => undefined);
			}
			client.pipe(upstream).pipe(client);
			client.once("close", () => upstream.destroy());
			upstream.once("close", () => client.destroy());
		});
		await new Promise<void>(resolve => proxy.server.listen(0, "127.0.0.1", resolve));
		proxy.port = (proxy.server.address() as AddressInfo).port;
		return proxy;
	}

	/** Drops every connection and refuses new ones until restored. */
	cut(): void {
		this.open = false;
		for (const socket of this.sockets) socket.destroy();
	}

	restore(): void {
		this.open = true;
	}

	close(): Promise<void> {
		this.cut();
		return new Promise(resolve => this.server.close(() => resolve()));
	}
}
