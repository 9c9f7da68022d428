/**
 * A Moleculer load-balancing strategy that sends a call about a terminal to the dispatcher replica
 * that owns the terminal (rendezvous hashing over the replicas, lib/owners.ts, as the dispatcher's
 * own ownership), so that a submit or a pull takes no extra hop between replicas and finds its
 * state in that replica's memory. Calls that name no terminal go round-robin. Registered by name
 * on every node, since an action's strategy travels to callers by name.
 *
 * Moleculer prefers a local endpoint and then skips the strategy; a caller whose node runs the
 * dispatcher itself (the api in a process with every service) asks `ownerEndpoint` instead.
 */
import Moleculer, { type Context, type Endpoint, type ServiceBroker } from "moleculer";
import type { TernMeta } from "./contracts.ts";
import { OwnerCache } from "./owners.ts";

const { Strategies } = Moleculer;

export const OWNER_STRATEGY = "TerminalOwner";

/** The terminal a call is about: its `terminalId` param, else the terminal that calls. */
export function ownerKey(params: unknown, meta: unknown): string | undefined {
	const terminalId = (params as { terminalId?: unknown } | undefined)?.terminalId;
	if (typeof terminalId === "string") return terminalId;
	const principal = (meta as TernMeta | undefined)?.principal;
	return principal?.kind === "terminal" ? principal.terminalId : undefined;
}

/**
 * The endpoint of `action` on the dispatcher replica that owns the call's terminal, local or not;
 * null when the call names no terminal or the owner does not offer the action.
 */
export function ownerEndpoint(broker: ServiceBroker, owners: OwnerCache, action: string, params: unknown, meta: unknown) {
	const key = ownerKey(params, meta);
	if (key === undefined) return null;
	// The same endpoints the strategy would choose among, read from the registry's own list.
	const available = broker.registry.getActionEndpoints(action)?.endpoints.filter(endpoint => endpoint.isAvailable) ?? [];
	const owner = owners.owner(
		key,
		available.map(endpoint => endpoint.id)
	);
	return available.find(endpoint => endpoint.id === owner) ?? null;
}

export class TerminalOwnerStrategy extends Strategies.Base {
	private counter = 0;
	private readonly owners = new OwnerCache(100_000);

	select(list: Endpoint[], ctx?: Context): Endpoint {
		const key = ownerKey(ctx?.params, ctx?.meta);
		if (key === undefined || list.length === 1) {
			if (this.counter >= list.length) this.counter = 0;
			return list[this.counter++];
		}
		const owner = this.owners.owner(
			key,
			list.map(endpoint => endpoint.id)
		);
		return list.find(endpoint => endpoint.id === owner) ?? list[0];
	}
}

// Moleculer's typings take an instance here; it registers (and later builds from) the class.
Strategies.register(OWNER_STRATEGY, TerminalOwnerStrategy as unknown as InstanceType<typeof Strategies.Base>);
