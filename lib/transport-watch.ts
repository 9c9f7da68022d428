/**
 * Whether this node can reach the cluster: its transporter's connection lost and found again.
 * Moleculer announces only a graceful disconnect (`$transporter.disconnected`); a NATS connection
 * that drops (nats-server gone, a partition) is told by the NATS client's own status stream,
 * which this reads. Services that must not take work they cannot finish while cut off (the
 * gateway, the dispatcher) subscribe here.
 */
import type { ServiceBroker } from "moleculer";

export interface TransportListener {
	/** The connection is gone; `reason` as the transport says it. */
	down(reason: string): void;
	/** It is back. */
	up(): void;
}

/** One status of the NATS client's stream (`NatsConnection.status()`). */
export interface TransportStatus {
	type: string;
	data?: unknown;
}

/** The NATS client of a broker, when it has one connected. */
function natsStatuses(broker: ServiceBroker): AsyncIterable<TransportStatus> | null {
	const client = (broker as unknown as { transit?: { tx?: { client?: { status?: () => AsyncIterable<TransportStatus> } } } })
		.transit?.tx?.client;
	return typeof client?.status === "function" ? client.status() : null;
}

export class TransportWatch {
	private readonly listeners = new Set<TransportListener>();
	private cutOff = false;
	private stopped = false;

	/** True while the connection is gone. */
	get isDown(): boolean {
		return this.cutOff;
	}

	subscribe(listener: TransportListener): () => void {
		this.listeners.add(listener);
		return () => this.listeners.delete(listener);
	}

	/** Feeds a stream of statuses (the NATS client's, or a test's) until it ends or `stop`. */
	async follow(statuses: AsyncIterable<TransportStatus>): Promise<void> {
		for await (const status of statuses) {
			if (this.stopped) return;
			if (status.type === "disconnect") this.down(`transporter disconnected (${String(status.data ?? "")})`);
			else if (status.type === "reconnect") this.up();
		}
	}

	down(reason: string): void {
		if (this.cutOff || this.stopped) return;
		this.cutOff = true;
		for (const listener of this.listeners) listener.down(reason);
	}

	up(): void {
		if (!this.cutOff || this.stopped) return;
		this.cutOff = false;
		for (const listener of this.listeners) listener.up();
	}

	stop(): void {
		this.stopped = true;
		this.listeners.clear();
	}
}

const watches = new WeakMap<ServiceBroker, TransportWatch>();

/** The watch of this broker's transporter, made on first use: one per process, whatever asks. */
export function transportWatch(broker: ServiceBroker): TransportWatch {
	const watch = watches.get(broker);
	if (watch) return watch;
	const made = new TransportWatch();
	watches.set(broker, made);
	const statuses = natsStatuses(broker);
	if (statuses)
		void made.follow(statuses).catch(err => broker.logger.warn(`Transporter status not followed: ${(err as Error).message}`));
	return made;
}
