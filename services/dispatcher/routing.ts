/**
 * Routing: who should take a PENDING task now. A task named for a terminal waits in that
 * terminal's queue; a selector task goes to the terminal its strategy picks among the online
 * matching ones. Either way the chosen terminal's owner drains its queue.
 */
import { fields } from "../../lib/log-format.ts";
import { call } from "../../lib/actions.ts";
import type { Presence, Selector } from "../../lib/contracts.ts";
import { labelsMatch } from "../../lib/labels.ts";
import { resolve as resolveStrategy, type Candidate, type PickStrategyName, type Strategy } from "../../lib/strategies/index.ts";
import type { TaskRow } from "../../models/task.model.ts";
import type { DispatcherCore } from "./core.ts";
import { takes, type Delivery } from "./delivery.ts";

const PICK_STRATEGIES: PickStrategyName[] = ["round_robin", "random", "least_busy", "consistent_hash"];

export class Routing {
	private readonly core: DispatcherCore;
	readonly delivery: Delivery;
	private readonly strategies = new Map<string, Strategy>(PICK_STRATEGIES.map(name => [name, resolveStrategy(name)]));

	constructor(core: DispatcherCore, delivery: Delivery) {
		this.core = core;
		this.delivery = delivery;
	}

	/** Finds who should take a PENDING task now and lets that terminal drain its queue. */
	async route(row: TaskRow): Promise<void> {
		if (row.target) return this.requestDrain(row.target);
		// A selector task is waiting, whatever this replica believed: drains here scan for it.
		this.core.book.selectorsQueued();
		const selector = row.selector === null ? {} : (JSON.parse(row.selector) as Selector);
		const matching = this.core.presence.list().filter(p => labelsMatch(selector.labels, p.labels) && takes(p, row.type));
		if (matching.length === 0) return;
		const candidates = await this.candidates(matching);
		const strategy = this.strategies.get(selector.strategy ?? "round_robin")!;
		const chosen = strategy.pick(candidates, { selectorKey: row.selector ?? "", key: selector.key });
		if (chosen)
			await this.requestDrain(
				chosen,
				matching.find(p => p.terminalId === chosen)
			);
	}

	/** Routes in the background, logging what fails. */
	routeLater(row: TaskRow): void {
		void this.route(row).catch(err => this.core.logger.error(fields({ taskId: row.id }), "Routing failed", row.id, err));
	}

	private async candidates(online: Presence[]): Promise<Candidate[]> {
		// Counts this replica keeps where it has them; the rest from the database in one query.
		const { book } = this.core;
		const unknown = online.filter(p => book.heldBy(p.terminalId) === undefined).map(p => p.terminalId);
		const counted = await this.core.store.inflight(unknown);
		return online.map(p => ({
			terminalId: p.terminalId,
			labels: p.labels,
			concurrency: p.concurrency,
			inflight: book.heldBy(p.terminalId) ?? counted.get(p.terminalId) ?? 0
		}));
	}

	/** Drains a terminal's queue on the replica that owns it. */
	requestDrain(terminalId: string, presence?: Presence): Promise<void> {
		const owner = this.core.owners.ownerOf(terminalId);
		if (owner === this.core.nodeID) return this.delivery.drainHere(terminalId, presence);
		return call(this.core.ports, "dispatcher.drain", { terminalId }, { nodeID: owner }).then(
			() => undefined,
			err => {
				// The owner is leaving or gone: drain here rather than leave the queue waiting.
				this.core.logger.warn(
					fields({ terminalId }),
					`Drain of '${terminalId}' on ${owner} failed (${(err as Error).message}); draining here`
				);
				return this.delivery.drainHere(terminalId, presence);
			}
		);
	}

	/** Asks for a drain in the background, logging what fails. */
	drainLater(terminalId: string): void {
		void this.requestDrain(terminalId).catch(err =>
			this.core.logger.error(fields({ terminalId }), "Drain failed", terminalId, err)
		);
	}

	/**
	 * Another replica asks: it may have queued tasks for the terminal, or changed what it holds,
	 * so what this replica knew of its queue and slots is read again.
	 */
	drainAsked(terminalId: string): Promise<void> {
		this.core.book.forget(terminalId);
		this.core.book.selectorsQueued();
		return this.delivery.drainHere(terminalId);
	}
}
