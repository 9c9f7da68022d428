/**
 * The cluster's consistency check: every dispatcher, scheduler and cache replica checks (and
 * repairs) what it owns, and the answers are merged into one report, a line per check. A replica
 * that does not answer is named, so a report never says "nothing found" about what nobody looked at.
 */
import type { ServiceBroker } from "moleculer";
import { call } from "../../lib/actions.ts";
import type { ReconcileCheck, ReconcileReport } from "../../lib/contracts.ts";
import { nodesRunning } from "../../lib/membership.ts";

/** One replica's part takes at most this long, ms. */
const PART_TIMEOUT_MS = 60_000;
const SAMPLES = 10;

const ORDER: ReconcileCheck["name"][] = [
	"presence-dead-node",
	"delivered-offline",
	"delivered-overdue",
	"processing-overdue",
	"fire-without-task"
];

const PARTS = ["dispatcher.reconcile", "scheduler.reconcile", "cache.reconcile"] as const;

export async function reconcileCluster(broker: ServiceBroker): Promise<ReconcileReport> {
	const started = Date.now();
	const unanswered: string[] = [];
	const asks = PARTS.flatMap(action =>
		nodesRunning(broker, action.split(".")[0]).map(nodeID =>
			call(broker, action, {}, { nodeID, timeout: PART_TIMEOUT_MS }).catch(() => {
				unanswered.push(`${action.split(".")[0]}@${nodeID}`);
				return [] as ReconcileCheck[];
			})
		)
	);
	const merged = new Map<string, ReconcileCheck>();
	for (const part of await Promise.all(asks))
		for (const c of part) {
			const into = merged.get(c.name);
			if (!into) merged.set(c.name, { ...c, samples: [...c.samples] });
			else {
				into.found += c.found;
				into.repaired += c.repaired;
				into.samples = [...into.samples, ...c.samples].slice(0, SAMPLES);
			}
		}
	const checks = ORDER.map(name => merged.get(name)).filter((c): c is ReconcileCheck => c !== undefined);
	return {
		startedAt: new Date(started).toISOString(),
		tookMs: Date.now() - started,
		found: checks.reduce((n, c) => n + c.found, 0),
		repaired: checks.reduce((n, c) => n + c.repaired, 0),
		checks,
		unanswered: unanswered.sort()
	};
}
