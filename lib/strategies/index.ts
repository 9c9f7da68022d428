import type { StrategyName } from "../contracts.ts";
import type { Strategy } from "./base.ts";
import { ConsistentHashStrategy } from "./consistent-hash.ts";
import { LeastBusyStrategy } from "./least-busy.ts";
import { RandomStrategy } from "./random.ts";
import { RoundRobinStrategy } from "./round-robin.ts";

export { Strategy, type Candidate, type PickRequest } from "./base.ts";
export { ConsistentHashStrategy, rendezvousOwner } from "./consistent-hash.ts";

/** Strategies that pick one terminal. `broadcast` and `sharding` fan out at submit instead. */
export type PickStrategyName = Exclude<StrategyName, "broadcast" | "sharding">;

const factories: Record<PickStrategyName, () => Strategy> = {
	round_robin: () => new RoundRobinStrategy(),
	random: () => new RandomStrategy(),
	least_busy: () => new LeastBusyStrategy(),
	consistent_hash: () => new ConsistentHashStrategy()
};

export function isPickStrategy(name: string): name is PickStrategyName {
	return name in factories;
}

/** A fresh instance of the named strategy; unknown names throw at once. */
export function resolve(name: string): Strategy {
	if (!isPickStrategy(name)) throw new TypeError(`Unknown routing strategy '${name}'`);
	return factories[name]();
}
