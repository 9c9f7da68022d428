/**
 * The gateway's series: sessions online, opened and ended, by transport (`socketio`, `ws`). Each
 * gateway node exports its own; the `nodeID` label tells them apart.
 */
import type { MetricRegistry, MetricTypes } from "moleculer";
import { series } from "./series.ts";
import { LabelCache } from "./labels.ts";

/** The transport as a label value. */
const TRANSPORT: Record<string, string> = { "socket.io": "socketio", websocket: "ws" };

export interface TerminalMetricsOptions {
	/** Adds a `terminalId` label to connects and disconnects: one series per terminal. @defaultValue false */
	terminalLabels?: boolean;
}

export class TerminalMetrics {
	private readonly online: MetricTypes.Gauge | null;
	private readonly connects: MetricTypes.Counter | null;
	private readonly disconnects: MetricTypes.Counter | null;
	private readonly refusals: MetricTypes.Counter | null;
	private readonly perTerminal: boolean;
	private readonly counts = new Map<string, number>();
	private readonly byTransport = new LabelCache((transport: string) => ({ transport: TRANSPORT[transport] ?? transport }));
	private readonly byReason = new LabelCache((key: string) => {
		const [transport, reason] = key.split("\0");
		return { transport: TRANSPORT[transport] ?? transport, reason };
	});

	constructor(registry: MetricRegistry, options: TerminalMetricsOptions = {}) {
		this.perTerminal = options.terminalLabels ?? false;
		const extra = this.perTerminal ? ["terminalId"] : [];
		this.online = series(registry, "tern_terminals_online");
		this.connects = series(registry, "tern_terminal_connects_total", extra);
		this.disconnects = series(registry, "tern_terminal_disconnects_total", extra);
		this.refusals = series(registry, "tern_gateway_handshakes_refused_total");
		// Both transports show from the start, at 0, so that a dashboard has a line to draw.
		for (const transport of Object.keys(TRANSPORT)) this.online?.set(0, this.byTransport.get(transport));
	}

	connected(transport: string, terminalId: string): void {
		if (!this.online) return;
		const labels = this.byTransport.get(transport);
		this.move(transport, labels, 1);
		this.connects!.increment(this.perTerminal ? { ...labels, terminalId } : labels);
	}

	/** A session ended: `online` says whether it was the terminal's live one (not one replaced by a newer). */
	disconnected(transport: string, reason: string, terminalId: string, online: boolean): void {
		if (!this.online) return;
		if (online) this.move(transport, this.byTransport.get(transport), -1);
		const labels = this.byReason.get(`${transport}\0${reason}`);
		this.disconnects!.increment(this.perTerminal ? { ...labels, terminalId } : labels);
	}

	/** A handshake refused with GATEWAY_BUSY. */
	refused(reason: "busy" | "partition"): void {
		this.refusals?.increment({ reason });
	}

	/** A newer session of the same terminal took over: the older one no longer counts as online. */
	superseded(transport: string): void {
		if (!this.online) return;
		this.move(transport, this.byTransport.get(transport), -1);
	}

	private move(transport: string, labels: Record<string, string>, by: number): void {
		const count = (this.counts.get(transport) ?? 0) + by;
		this.counts.set(transport, count);
		this.online!.set(count, labels);
	}
}
