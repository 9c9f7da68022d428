/**
 * A TCP proxy on port 0 that a test can cut, stall and restore: the network between a node and a
 * server (the database, NATS) failing, while the server itself keeps running for everyone else.
 * `cut` drops every connection and refuses new ones (a server that is down); `stall` keeps them
 * open but carries nothing, and holds new ones unanswered (a server that hangs, a network that
 * drops packets); `restore` carries on from either.
 */
import { connect, createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";

export class TcpProxy {
	port = 0;
	private server!: Server;
	private readonly sockets = new Set<Socket>();
	private open = true;
	private stalled = false;
	/** Connections accepted while stalled, joined to the server on restore. */
	private held: Socket[] = [];
	private host = "";
	private upstreamPort = 0;

	static async start(host: string, port: number): Promise<TcpProxy> {
		const proxy = new TcpProxy();
		proxy.host = host;
		proxy.upstreamPort = port;
		proxy.server = createServer(client => {
			if (!proxy.open) return void client.destroy();
			client.on("error", () => undefined);
			if (proxy.stalled) {
				client.pause();
				proxy.held.push(client);
				proxy.sockets.add(client);
				client.once("close", () => proxy.sockets.delete(client));
				return;
			}
			proxy.join(client);
		});
		await new Promise<void>(resolve => proxy.server.listen(0, "127.0.0.1", resolve));
		proxy.port = (proxy.server.address() as AddressInfo).port;
		return proxy;
	}

	private join(client: Socket): void {
		const upstream = connect({ host: this.host, port: this.upstreamPort });
		for (const socket of [client, upstream]) {
			this.sockets.add(socket);
			socket.once("close", () => this.sockets.delete(socket));
			socket.on("error", () => undefined);
		}
		client.pipe(upstream).pipe(client);
		client.once("close", () => upstream.destroy());
		upstream.once("close", () => client.destroy());
		if (this.stalled) {
			client.pause();
			upstream.pause();
		}
	}

	/** Drops every connection and refuses new ones until restored. */
	cut(): void {
		this.open = false;
		for (const socket of this.sockets) socket.destroy();
		this.held = [];
	}

	/** Keeps every connection open but carries nothing, in either direction, until restored. */
	stall(): void {
		this.stalled = true;
		for (const socket of this.sockets) socket.pause();
	}

	restore(): void {
		this.open = true;
		if (!this.stalled) return;
		this.stalled = false;
		for (const socket of this.sockets) socket.resume();
		for (const client of this.held.splice(0)) if (!client.destroyed) this.join(client);
	}

	close(): Promise<void> {
		this.cut();
		return new Promise(resolve => this.server.close(() => resolve()));
	}
}
