/**
 * `GET /api/system/status`: what a person wants at a glance. Each part comes from the service
 * that owns it; a part whose service does not answer is named in `unavailable` (and left at
 * zero) rather than failing the whole page, since the page matters most when something is wrong.
 */
import type { ServiceBroker } from "moleculer";
import { call } from "../../lib/actions.ts";
import type { NodeStorage, StorageState, SystemStatus, TaskRates } from "../../lib/contracts.ts";
import { nodesRunning } from "../../lib/membership.ts";
import type { Counted } from "./signals.ts";
import type { EventWindow } from "./windows.ts";
import type { LatencyWindow } from "./latency.ts";

interface RegistryNode {
	id: string;
	available: boolean;
	local?: boolean;
	lastHeartbeatTime?: number;
	services?: { name: string }[];
}

function rates(counts: EventWindow<Counted>, seconds: number, now: number): TaskRates {
	return {
		submitted: counts.sum("submitted", seconds, now),
		completed: counts.sum("completed", seconds, now),
		failed: counts.sum("failed", seconds, now),
		timedOut: counts.sum("timedOut", seconds, now)
	};
}

export function nodesOf(broker: ServiceBroker, now: number): SystemStatus["nodes"] {
	const nodes = broker.registry.getNodeList({ onlyAvailable: false, withServices: true }) as unknown as RegistryNode[];
	return nodes
		.map(node => ({
			id: node.id,
			available: node.available,
			services: [...new Set((node.services ?? []).map(s => s.name).filter(name => !name.startsWith("$")))].sort(),
			lastSeenAt: node.local
				? new Date(now).toISOString()
				: node.lastHeartbeatTime
					? new Date(node.lastHeartbeatTime).toISOString()
					: null
		}))
		.sort((a, b) => a.id.localeCompare(b.id));
}

/** Each dispatcher's storage; a replica that does not answer is left out. */
export async function storageOf(broker: ServiceBroker): Promise<NodeStorage[]> {
	const answers = await Promise.all(
		nodesRunning(broker, "dispatcher").map(nodeID =>
			call(broker, "dispatcher.storage", {}, { nodeID, timeout: 3000 }).then(
				(state: StorageState) => ({ nodeID, ...state }),
				() => null
			)
		)
	);
	return answers.filter((a): a is NodeStorage => a !== null).sort((a, b) => a.nodeID.localeCompare(b.nodeID));
}

export async function systemStatus(
	broker: ServiceBroker,
	counts: EventWindow<Counted>,
	latency: LatencyWindow,
	version: string,
	now = Date.now()
): Promise<SystemStatus> {
	const timeout = { timeout: 3000 };
	const [terminals, stats, alerts, storage] = await Promise.all([
		call(broker, "terminals.summary", {}, timeout).catch(() => null),
		call(broker, "dispatcher.stats", {}, timeout).catch(() => null),
		call(broker, "alert.firingCount", {}, timeout).catch(() => null),
		storageOf(broker)
	]);
	const degraded = storage.find(s => s.degraded);
	return {
		version,
		mode: (broker as unknown as { transit?: unknown }).transit ? "cluster" : "embedded",
		uptimeSeconds: Math.round(process.uptime()),
		nodes: nodesOf(broker, now),
		terminals: terminals
			? { online: terminals.online, offline: terminals.offline, disabled: terminals.disabled }
			: { online: 0, offline: 0, disabled: 0 },
		tasks: stats?.tasks ?? {},
		rates: { minute: rates(counts, 60, now), hour: rates(counts, 3600, now) },
		alerts: { firing: alerts?.firing ?? 0 },
		latency: latency.summary(now),
		unavailable: [...(terminals ? [] : ["terminals"]), ...(stats ? [] : ["tasks"]), ...(alerts ? [] : ["alerts"])],
		degraded: degraded !== undefined,
		degradedReason: degraded?.reason ?? null,
		storage
	};
}
