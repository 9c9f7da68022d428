/**
 * What the dispatcher reads of gateways it has not heard from: the sessions of each gateway node
 * that (re)appeared. A gateway that was cut off (NATS restarted, say) kept its terminals and
 * announces none of them again, so its sessions are read, and their queues drained.
 */
import type { ServiceBroker } from "moleculer";
import type { Presence } from "../../lib/contracts.ts";
import { readAll } from "../../lib/paging.ts";
import type { Dispatcher } from "./dispatcher.ts";

/** Reads the sessions of every available gateway node not in `known`, and adds it there. */
export async function learnGateways(broker: ServiceBroker, dispatcher: Dispatcher, known: Set<string>): Promise<void> {
	const services = broker.registry.getServiceList({ onlyAvailable: true }) as { name: string; nodeID: string }[];
	for (const nodeID of new Set(services.filter(s => s.name === "gateway").map(s => s.nodeID))) {
		if (known.has(nodeID)) continue;
		known.add(nodeID);
		try {
			const sessions = await readAll<Presence>(broker, "gateway.sessions", { nodeID });
			dispatcher.core.presence.load(sessions);
			// Their queues may have waited meanwhile.
			for (const p of sessions)
				if (dispatcher.core.owns(p.terminalId))
					void dispatcher.routing.drainAsked(p.terminalId).catch(err => broker.logger.warn("Drain failed", err));
		} catch (err) {
			known.delete(nodeID);
			broker.logger.warn(`Could not read the sessions of gateway ${nodeID}: ${(err as Error).message}`);
		}
	}
}
