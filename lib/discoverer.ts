/**
 * Moleculer's local discoverer, with failure detection fast enough for Tern's takeover promise
 * (a dead node's terminals, deadlines and jobs move within 3 s). The stock one measures
 * heartbeat age in whole seconds and checks only every `heartbeatTimeout`, which makes a
 * 3 s timeout take 4–7 s. This one keeps each node's last heartbeat in milliseconds and checks
 * every `checkEveryMs`.
 */
import Moleculer from "moleculer";

export interface PromptDiscovererOptions {
	/** Silence after which a node is dead, ms. Heartbeats come every 0.5–1.5 s. */
	failAfterMs: number;
	/** How often nodes are checked, ms. */
	checkEveryMs: number;
}

export class PromptDiscoverer extends Moleculer.Discoverers.Local {
	private readonly lastSeen = new Map<string, number>();
	private readonly failAfterMs: number;
	private readonly checkEveryMs: number;

	constructor(options: PromptDiscovererOptions) {
		super();
		this.failAfterMs = options.failAfterMs;
		this.checkEveryMs = options.checkEveryMs;
	}

	startHeartbeatTimers(): void {
		super.startHeartbeatTimers();
		if (!this.checkNodesTimer) return;
		clearInterval(this.checkNodesTimer);
		this.checkNodesTimer = setInterval(() => this.checkRemoteNodes(), this.checkEveryMs);
		this.checkNodesTimer.unref();
	}

	heartbeatReceived(nodeID: string, payload: Record<string, unknown>): void {
		this.lastSeen.set(nodeID, Date.now());
		super.heartbeatReceived(nodeID, payload);
	}

	checkRemoteNodes(): void {
		if ((this as unknown as { opts: { disableHeartbeatChecks?: boolean } }).opts.disableHeartbeatChecks) return;
		const now = Date.now();
		for (const node of this.registry.nodes.toArray() as { id: string; local: boolean; available: boolean }[]) {
			if (node.local || !node.available) continue;
			const last = this.lastSeen.get(node.id);
			if (last === undefined) {
				this.lastSeen.set(node.id, now);
				continue;
			}
			if (now - last > this.failAfterMs) {
				this.logger.warn(`No heartbeat from '${node.id}' for ${now - last} ms: it is gone`);
				this.lastSeen.delete(node.id);
				this.registry.nodes.disconnected(node.id, true);
			}
		}
	}
}
