/**
 * Overlap policy: what a fire does while the job's previous run is still going. Pure: the
 * caller applies the decision.
 */
import type { OverlapPolicy } from "../../models/job.model.ts";

export type OverlapDecision =
	{ action: "fire" } | { action: "skip"; detail: string } | { action: "replace"; cancel: string[]; detail: string };

/** @param running the previous run's tasks not known to be final */
export function decideOverlap(policy: OverlapPolicy, running: string[]): OverlapDecision {
	if (policy === "allow" || running.length === 0) return { action: "fire" };
	const list = running.join(", ");
	if (policy === "forbid") return { action: "skip", detail: `the previous run (${list}) is still running` };
	return { action: "replace", cancel: running, detail: `replaced the previous run (${list})` };
}
