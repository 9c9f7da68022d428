/**
 * Recovery: tasks delivered to a session that is gone come back to the queue. On a session's
 * close, on a restart, and when a replica left — whose deliveries may never have been pushed.
 */
import { fields } from "../../lib/log-format.ts";
import type { Presence } from "../../lib/contracts.ts";
import type { Departure } from "../../lib/owners.ts";
import { rendezvousOwner } from "../../lib/strategies/index.ts";
import type { TaskRow } from "../../models/task.model.ts";
import type { DispatcherCore } from "./core.ts";
import type { Routing } from "./routing.ts";
import { toPush } from "./views.ts";

/** Delivered rows read at once after a restart or a departure, and handled side by side per chunk. */
const RECOVERY_LIMIT = 100_000;
const RECOVERY_CHUNK = 1000;

export class Recovery {
	private readonly core: DispatcherCore;
	private readonly routing: Routing;

	constructor(core: DispatcherCore, routing: Routing) {
		this.core = core;
		this.routing = routing;
	}

	/**
	 * A session of this terminal closed, or a new one came up (`current`): its DELIVERED tasks
	 * return to the queue, except those delivered to a newer session that is already up.
	 */
	async returnDelivered(terminalId: string, current?: Presence): Promise<void> {
		const { core } = this;
		if (current) core.presence.set(current);
		const presence = current ?? core.presence.get(terminalId);
		const now = Date.now();
		const rows = await core.store.delivered(terminalId, presence?.connectedAt);
		await Promise.all(
			rows.map(async row => {
				if ((await this.routing.delivery.returnToQueue(row, now)) && !row.target)
					await this.routing
						.route({ ...row, status: "PENDING" })
						.catch(err => core.logger.error(fields({ taskId: row.id }), "Routing failed", row.id, err));
			})
		);
		// A new session: what this replica counted for the old one is counted again.
		core.book.forget(terminalId);
		if (presence) await this.routing.requestDrain(terminalId, presence);
	}

	/**
	 * After a restart, or when a replica left: DELIVERED tasks of terminals that are not connected
	 * go back to the queue. Those of connected terminals that `departed` owned are pushed again, same
	 * attempt: the replica that wrote them may have died before its push went out, and a terminal
	 * drops a repeat of an attempt it already has.
	 */
	async recoverDelivered(departed?: Departure): Promise<void> {
		const { core } = this;
		const now = Date.now();
		let returned = 0;
		let repushed = 0;
		const mine = (await core.store.allDelivered(RECOVERY_LIMIT)).filter(row => core.owns(core.keyOf(row)));
		const pushes: Promise<unknown>[] = [];
		const recover = (row: TaskRow): Promise<boolean> | boolean => {
			const presence = row.terminalId ? core.presence.get(row.terminalId) : null;
			if (!presence) return this.routing.delivery.returnToQueue(row, now);
			const previous = departed ? rendezvousOwner(core.keyOf(row), departed.owners) : null;
			if (previous && departed?.nodeIDs.includes(previous)) {
				repushed++;
				pushes.push(core.outbox.push(presence, { event: "task", data: toPush(row, core.keyring) }));
			}
			return false;
		};
		for (let start = 0; start < mine.length; start += RECOVERY_CHUNK) {
			const done = await Promise.all(mine.slice(start, start + RECOVERY_CHUNK).map(recover));
			returned += done.filter(Boolean).length;
		}
		await Promise.all(pushes);
		if (returned > 0) core.logger.info(`Returned ${returned} delivered task(s) of offline terminals to the queue`);
		if (repushed > 0) core.logger.info(`Pushed ${repushed} delivered task(s) of a replica that left again`);
	}
}
