/**
 * A gateway cut off from the cluster (its NATS connection gone) cannot hand a terminal's acks and
 * results to a dispatcher, nor be pushed tasks: it stops taking work it cannot finish. New
 * handshakes are refused with GATEWAY_BUSY at once; the sessions it holds are kept for
 * `partitionGrace` ms in case the connection is back soon (a nats-server restart), and past that
 * each is told to reconnect — to another gateway, after a delay spread at random over
 * `reconnectSpread` ms so that they do not arrive together — and let go. When the connection is
 * back, handshakes are taken again.
 */
import type { TransportListener } from "../../lib/transport-watch.ts";
import type { AdmissionGate } from "./gate.ts";

export interface PartitionSettings {
	/** How long sessions are kept once cut off, ms. */
	partitionGrace: number;
	/** Reconnect delays are spread over this long, ms. */
	reconnectSpread: number;
}

export interface PartitionPorts {
	gate: AdmissionGate;
	/** Tells every session to reconnect after a delay of `delayFor()` ms, and lets it go. */
	releaseAll(reason: string, delayFor: () => number): void;
	log(message: string): void;
	/** @defaultValue setTimeout / clearTimeout / Math.random */
	setTimer?: (fn: () => void, ms: number) => unknown;
	clearTimer?: (timer: unknown) => void;
	random?: () => number;
}

export class PartitionGuard implements TransportListener {
	private readonly settings: PartitionSettings;
	private readonly ports: Required<PartitionPorts>;
	private grace: unknown = null;

	constructor(settings: PartitionSettings, ports: PartitionPorts) {
		this.settings = settings;
		this.ports = {
			setTimer: (fn, ms) => setTimeout(fn, ms),
			clearTimer: timer => clearTimeout(timer as NodeJS.Timeout),
			random: Math.random,
			...ports
		};
	}

	/** A random delay within the spread, whole ms. */
	delay(): number {
		return Math.floor(this.ports.random() * this.settings.reconnectSpread);
	}

	down(reason: string): void {
		const { gate, log, setTimer } = this.ports;
		// Those refused meanwhile come back around when the others are told to.
		gate.partitioned(this.settings.partitionGrace + this.settings.reconnectSpread / 2);
		log(`Cut off from the cluster (${reason}): refusing handshakes; sessions kept ${this.settings.partitionGrace} ms`);
		this.grace ??= setTimer(() => {
			this.grace = null;
			log(`Still cut off after ${this.settings.partitionGrace} ms: terminals told to reconnect elsewhere`);
			this.ports.releaseAll("partition", () => this.delay());
		}, this.settings.partitionGrace);
	}

	up(): void {
		if (this.grace !== null) this.ports.clearTimer(this.grace);
		this.grace = null;
		this.ports.gate.partitioned(null);
		this.ports.log("Back in the cluster: taking handshakes again");
	}

	stop(): void {
		if (this.grace !== null) this.ports.clearTimer(this.grace);
		this.grace = null;
	}
}
