/**
 * The consistency check of one dispatcher replica: what its picture of presence, its task table
 * and the database disagree on, for the terminals and tasks it owns, and the repair of each.
 *
 *   presence-dead-node   a session on a gateway node that is gone: dropped from the mirror
 *   delivered-offline    a task DELIVERED to a terminal with no session: back to the queue
 *   delivered-overdue    DELIVERED past its ack deadline and the sweep's grace: timed out now
 *   processing-overdue   PROCESSING past its deadline and the sweep's grace: timed out now
 *
 * Every repair is the same compare-and-set the lifecycle uses, so a check that races the sweep,
 * a result or another replica changes nothing twice.
 */
import type { ReconcileCheck } from "../../lib/contracts.ts";
import type { TaskRow } from "../../models/task.model.ts";
import type { DispatcherCore } from "./core.ts";
import type { Deadlines } from "./deadlines.ts";
import type { Routing } from "./routing.ts";

/** Rows looked at per check and run. */
const CHECK_LIMIT = 10_000;
const SAMPLES = 10;

type Check = Omit<ReconcileCheck, "found" | "repaired" | "samples"> & { found: string[]; repaired: number };

function check(name: ReconcileCheck["name"], description: string): Check {
	return { name, description, found: [], repaired: 0 };
}

export function report(checks: Check[]): ReconcileCheck[] {
	return checks.map(c => ({ ...c, found: c.found.length, samples: c.found.slice(0, SAMPLES) }));
}

export class ConsistencyCheck {
	private readonly core: DispatcherCore;
	private readonly routing: Routing;
	private readonly deadlines: Deadlines;
	private readonly nodeAlive: (nodeID: string) => boolean;

	constructor(core: DispatcherCore, routing: Routing, deadlines: Deadlines, nodeAlive: (nodeID: string) => boolean) {
		this.core = core;
		this.routing = routing;
		this.deadlines = deadlines;
		this.nodeAlive = nodeAlive;
	}

	/** Runs every check, repairing what it finds; `graceMs`: how long past a deadline counts as missed. */
	async run(now = Date.now(), graceMs = Math.max(4 * this.core.settings.sweepInterval, 2000)): Promise<ReconcileCheck[]> {
		const { core } = this;
		const deadNodes = check("presence-dead-node", "a session held by a gateway node that is gone");
		for (const presence of core.presence.list())
			if (!this.nodeAlive(presence.nodeID)) {
				deadNodes.found.push(presence.terminalId);
				core.presence.remove(presence.terminalId, presence.sessionId);
				deadNodes.repaired++;
			}

		const offline = check("delivered-offline", "a task delivered to a terminal that has no session");
		const mine = (rows: TaskRow[]) => rows.filter(row => core.owns(core.keyOf(row)));
		for (const row of mine(await core.store.allDelivered(CHECK_LIMIT))) {
			if (row.terminalId && core.presence.get(row.terminalId)) continue;
			// Just delivered: its session may be coming up now.
			if (Number(row.deliveredAt) > now - graceMs) continue;
			offline.found.push(row.id);
			if (await this.routing.delivery.returnToQueue(row, now)) {
				offline.repaired++;
				if (!row.target) await this.routing.route({ ...row, status: "PENDING" });
			}
		}

		const overdue = async (status: "DELIVERED" | "PROCESSING", c: Check) => {
			for (const row of mine(await core.store.due(status, "deadlineAt", now - graceMs, CHECK_LIMIT))) {
				c.found.push(row.id);
				await this.deadlines.overdue(row, now);
				const after = await core.store.get(row.id);
				if (!after || Number(after.updatedAt) !== Number(row.updatedAt)) c.repaired++;
			}
		};
		const lateAck = check("delivered-overdue", "a task delivered and not acknowledged long past its ack deadline");
		const lateRun = check("processing-overdue", "a task running long past its deadline");
		await overdue("DELIVERED", lateAck);
		await overdue("PROCESSING", lateRun);
		return report([deadNodes, offline, lateAck, lateRun]);
	}
}
