/**
 * Delivery: a terminal's queue drained into its free slots, by push to its session or by an HTTP
 * pull. Deciding what a terminal gets next runs under that terminal's lock here, its owner, so
 * its concurrency is never exceeded; drains asked for while one runs share one follow-up drain.
 */
import { fields } from "../../lib/log-format.ts";
import type { Presence, Selector, TaskPush } from "../../lib/contracts.ts";
import { labelsMatch } from "../../lib/labels.ts";
import { ConsistentHashStrategy } from "../../lib/strategies/index.ts";
import type { TaskRow } from "../../models/task.model.ts";
import type { DispatcherCore } from "./core.ts";
import { transition } from "./transitions.ts";
import { toPush } from "./views.ts";

/** Selector tasks looked at per drain. */
const SELECTOR_SCAN = 200;

function parseSelector(row: TaskRow): Selector {
	return row.selector === null ? {} : (JSON.parse(row.selector) as Selector);
}

/**
 * A terminal that named its capabilities (its runners) takes selector tasks of those types only;
 * one that named none takes any. A task pinned to a terminal goes to it regardless.
 */
export function takes(presence: Pick<Presence, "capabilities">, type: string): boolean {
	return !presence.capabilities || presence.capabilities.includes(type);
}

function byQueueOrder(a: TaskRow, b: TaskRow): number {
	return b.priority - a.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export class Delivery {
	private readonly core: DispatcherCore;
	private readonly hashing = new ConsistentHashStrategy();
	/** Drains asked for while one runs: one follow-up drain serves them all. */
	private readonly queuedDrains = new Map<string, Promise<void>>();

	constructor(core: DispatcherCore) {
		this.core = core;
	}

	/** Drains a terminal's queue under its lock here; requests made meanwhile share one follow-up drain. */
	drainHere(terminalId: string, presence?: Presence): Promise<void> {
		const queued = this.queuedDrains.get(terminalId);
		if (queued) return queued;
		const drain = this.core.locks.run(terminalId, async () => {
			this.queuedDrains.delete(terminalId);
			await this.drainOnce(terminalId, presence);
		});
		this.queuedDrains.set(terminalId, drain);
		return drain;
	}

	/**
	 * Pushes the terminal as many due tasks as it has free slots, in queue order. Holds its lock.
	 * `ownOnly`: only the tasks named for it, not the selector tasks it matches.
	 */
	async drainOnce(terminalId: string, hint?: Presence, ownOnly = false): Promise<void> {
		const { core } = this;
		const presence = hint ?? core.presence.get(terminalId);
		if (!presence || core.cutOff) return;
		const terminal = await core.terminals.get(terminalId);
		if (!terminal?.enabled || terminal.draining) return;
		const free = presence.concurrency - (await core.heldBy(terminalId));
		if (free <= 0) return;
		const now = Date.now();
		const rows = await this.collectFor(terminalId, presence.labels, free, now, ownOnly, presence.capabilities);
		const deliveries: Promise<unknown>[] = [];
		for (const row of rows) {
			if (!core.book.reserve(terminalId, presence.concurrency)) {
				// Slots went to new tasks meanwhile: the queue is not empty after all.
				core.book.mayHaveWork(terminalId);
				break;
			}
			deliveries.push(this.deliver(row, terminalId, now, presence));
		}
		await Promise.all(deliveries);
	}

	/** Up to `limit` due tasks this terminal may take: its own queue merged with matching selector tasks. */
	private async collectFor(
		terminalId: string,
		labels: Record<string, string>,
		limit: number,
		now: number,
		ownOnly = false,
		capabilities?: string[]
	): Promise<TaskRow[]> {
		const { book, store } = this.core;
		let pinned: TaskRow[] = [];
		const owned = this.core.owns(terminalId);
		if (!book.isEmpty(terminalId) || !owned) {
			const mark = book.queueMark(terminalId);
			pinned = await store.pendingPinned(terminalId, now, limit);
			// Found empty, and nothing queued for it here meanwhile: skip the query until something is.
			if (pinned.length < limit && owned) book.foundEmpty(terminalId, mark);
		}
		if (ownOnly || !book.mayHaveSelectorTasks) return pinned;
		const mark = book.selectorMark();
		const waiting = await store.pendingUnassigned(now, SELECTOR_SCAN);
		if (waiting.length === 0) book.foundNoSelectorTasks(mark);
		const open: TaskRow[] = [];
		for (const row of waiting) {
			const selector = parseSelector(row);
			if (!labelsMatch(selector.labels, labels) || (capabilities && !capabilities.includes(row.type))) continue;
			if (selector.strategy === "consistent_hash" && this.keyOwner(row, selector) !== terminalId) continue;
			open.push(row);
			if (open.length >= limit) break;
		}
		if (open.length === 0) return pinned;
		return [...pinned, ...open].sort(byQueueOrder).slice(0, limit);
	}

	/** The key's owner among the online matching terminals takes a consistent_hash task, or nobody yet. */
	private keyOwner(row: TaskRow, selector: Selector): string | undefined {
		const matching = this.core.presence.list().filter(p => labelsMatch(selector.labels, p.labels) && takes(p, row.type));
		const owner = this.hashing.owner(
			matching.map(p => ({ terminalId: p.terminalId, labels: p.labels, concurrency: p.concurrency, inflight: 0 })),
			selector.key ?? ""
		);
		return owner?.terminalId;
	}

	/**
	 * PENDING → DELIVERED as a new attempt (its slot already reserved), then the push, not waited
	 * for: a gateway that died holds it until it is found dead (seconds), and the drain — the
	 * terminal's lock — must not wait with it. A failed push returns the task. Null when another
	 * actor took the task first.
	 */
	async deliver(row: TaskRow, terminalId: string, now: number, presence: Presence | null): Promise<TaskRow | null> {
		const outcome = transition(row, { kind: "deliver", terminalId, via: presence ? "push" : "pull" }, now);
		if (outcome.kind !== "change") {
			this.core.book.release(terminalId);
			return null;
		}
		const delivered = await this.core.write(row, outcome, { reserved: terminalId });
		if (delivered && presence) this.startPush(delivered, presence);
		return delivered;
	}

	/** Pushes a DELIVERED task in the background; when its session is gone, the task goes back to the queue. */
	startPush(row: TaskRow, presence: Presence): void {
		void this.pushTask(row, presence).catch(err =>
			this.core.logger.error(fields({ taskId: row.id, terminalId: presence.terminalId }), "Push failed", row.id, err)
		);
	}

	private async pushTask(row: TaskRow, presence: Presence): Promise<boolean> {
		const sent = await this.core.outbox.push(presence, { event: "task", data: toPush(row, this.core.keyring) });
		if (!sent) {
			this.core.logger.debug(
				fields({ taskId: row.id, terminalId: presence.terminalId }),
				`Push of ${row.id} to ${presence.terminalId} found no session`
			);
			await this.returnToQueue(row, Date.now());
		}
		return sent;
	}

	/** DELIVERED → PENDING, same attempt: an ack or result of it is still accepted. */
	async returnToQueue(row: TaskRow, now: number): Promise<boolean> {
		const outcome = transition(row, { kind: "return" }, now);
		if (outcome.kind !== "change") return false;
		return (await this.core.write(row, outcome)) !== null;
	}

	/** Hands a terminal its due tasks over HTTP, here, its owner. */
	pullHere(terminalId: string, labels: Record<string, string>, concurrency: number, limit?: number): Promise<TaskPush[]> {
		const { core } = this;
		return core.locks.run(terminalId, async () => {
			const free = Math.min(limit ?? concurrency, concurrency - (await core.heldBy(terminalId)));
			if (free <= 0) return [];
			const now = Date.now();
			const pending: Promise<TaskRow | null>[] = [];
			for (const row of await this.collectFor(terminalId, labels, free, now)) {
				if (!core.book.reserve(terminalId, concurrency)) {
					core.book.mayHaveWork(terminalId);
					break;
				}
				pending.push(this.deliver(row, terminalId, now, null));
			}
			const tasks: TaskPush[] = [];
			for (const delivered of await Promise.all(pending)) {
				if (!delivered) continue;
				try {
					tasks.push(toPush(delivered, core.keyring));
				} catch (err) {
					// Its secrets do not open (their key is gone): the others still go; it times out unacked.
					core.logger.error(fields({ taskId: delivered.id, terminalId }), "Pull failed", delivered.id, err);
				}
			}
			return tasks;
		});
	}
}
