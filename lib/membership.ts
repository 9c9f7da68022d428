import type { ServiceBroker } from "moleculer";

/** Node IDs of every available instance of a service, as this node's registry sees them. */
export function nodesRunning(broker: ServiceBroker, service: string): string[] {
	const services = broker.registry.getServiceList({ onlyAvailable: true }) as { name: string; nodeID: string }[];
	return services.filter(s => s.name === service).map(s => s.nodeID);
}
