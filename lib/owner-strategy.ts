/**
 * A Moleculer load-balancing strategy that sends a call about a terminal to the dispatcher replica
 * that owns the terminal (rendezvous hashing over the replicas, as the dispatcher's own ownerOf),
 * so that a submit or a result takes no extra hop between replicas and finds its state in that
 * replica's memory. Calls that name no terminal go round-robin. Registered by name on every node,
 * since an action's strategy travels to callers by name.
 */
import Moleculer, { type Context, type Endpoint } from "moleculer";
import type { TernMeta } from "./contracts.ts";
import { OwnerCache } from "./owners.ts";

const { Strategies } = Moleculer;

export const OWNER_STRATEGY = "TerminalOwner";

export class TerminalOwnerStrategy extends Strategies.Base {
	private counter = 0;
	private readonly owners = new OwnerCache(100_000);

	select(list: Endpoint[], ctx?: Context): Endpoint {
		const params = ctx?.params as { terminalId?: unknown } | undefined;
		const principal = (ctx?.meta as TernMeta | undefined)?.principal;
		const key =
			typeof params?.terminalId === "string"
				? params.terminalId
				: principal?.kind === "terminal"
					? principal.terminalId
					: undefined;
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
