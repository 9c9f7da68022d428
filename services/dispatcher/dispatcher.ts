/**
 * The dispatcher assembled from its modules, each with one job:
 *
 *   transitions  the lifecycle as pure functions: (row, event, now) → change | refusal
 *   book         held slots and empty-queue hints of the terminals this replica owns
 *   core         shared parts, and `write`: the compare-and-set with everything kept in step
 *   outbox       status events and pushes, batched per turn
 *   delivery     draining a terminal's queue into its free slots, by push or pull
 *   routing      who takes a PENDING task; drains asked of the terminal's owner
 *   finishing    ending an attempt (final or retry), cancelling, telling the terminal
 *   replies      a terminal's ack, progress and result
 *   admission    submitted bodies become tasks
 *   recovery     deliveries to sessions that are gone come back
 *   deadlines    the sweep: timeouts, expiry, retry wake-ups, the rescan
 *   connects     new sessions' queues handed out a few at a time, the most urgent first
 *
 * The service (`dispatcher.service.ts`) maps actions, events and its timer onto this.
 */
import type { Logger } from "moleculer";
import { call } from "../../lib/actions.ts";
import type { TaskPush } from "../../lib/contracts.ts";
import { Errors } from "../../lib/errors.ts";
import { Admission } from "./admission.ts";
import { ConnectStage } from "./connect-stage.ts";
import { DispatcherCore } from "./core.ts";
import { Deadlines } from "./deadlines.ts";
import { Delivery } from "./delivery.ts";
import { Finishing } from "./finishing.ts";
import type { DispatcherPorts } from "./outbox.ts";
import type { ListParams } from "./params.ts";
import { Recovery } from "./recovery.ts";
import { Replies } from "./replies.ts";
import { Routing } from "./routing.ts";
import type { DispatcherSettings } from "./settings.ts";
import type { TaskStore } from "./store.ts";
import type { TaskMetrics } from "../../lib/metrics/tasks.ts";
import { toView } from "./views.ts";
import type { Keyring } from "../../lib/keyring.ts";

export interface DispatcherDeps {
	ports: DispatcherPorts;
	logger: Logger;
	settings: DispatcherSettings;
	store: TaskStore;
	metrics: TaskMetrics;
	keyring: Keyring;
}

export class Dispatcher {
	readonly core: DispatcherCore;
	readonly delivery: Delivery;
	readonly routing: Routing;
	readonly finishing: Finishing;
	readonly replies: Replies;
	readonly admission: Admission;
	readonly recovery: Recovery;
	readonly deadlines: Deadlines;
	readonly connects: ConnectStage;

	constructor(deps: DispatcherDeps) {
		this.core = new DispatcherCore(deps);
		this.delivery = new Delivery(this.core);
		this.routing = new Routing(this.core, this.delivery);
		this.finishing = new Finishing(this.core, this.routing);
		this.replies = new Replies(this.core, this.finishing);
		this.admission = new Admission(this.core, this.routing);
		this.recovery = new Recovery(this.core, this.routing);
		this.deadlines = new Deadlines(this.core, this.finishing, () => this.replies.truncated.clear());
		this.connects = new ConnectStage(
			{
				turn: presence => this.recovery.returnDelivered(presence.terminalId, presence),
				urgency: ids => this.core.store.queueTops(ids)
			},
			{ concurrency: deps.settings.connectConcurrency }
		);
	}

	/** The live dispatcher replicas: terminals whose owner changed are counted again. */
	setOwners(nodeIDs: string[]): void {
		if (this.core.owners.set(nodeIDs)) this.core.book.reset();
	}

	/**
	 * Hands a terminal its due tasks over HTTP. The TerminalOwner strategy brings the call to the
	 * terminal's owner, whose lock keeps the terminal within its concurrency.
	 */
	async pull(terminalId: string, limit?: number): Promise<TaskPush[]> {
		const { core } = this;
		const terminal = await core.terminals.get(terminalId);
		if (!terminal) throw Errors.terminalNotFound(terminalId);
		if (!terminal.enabled) throw Errors.terminalDisabled(terminalId);
		void this.touch(terminalId);
		if (terminal.draining) return [];
		const concurrency = core.presence.get(terminalId)?.concurrency ?? terminal.concurrency;
		return this.delivery.pullHere(terminalId, terminal.labels, concurrency, limit);
	}

	/** A pull is a sign of life: the registry lists the terminal online over `pull` while it polls. */
	private async touch(terminalId: string): Promise<void> {
		try {
			await call(this.core.ports, "terminals.touch", { id: terminalId, transport: "pull" });
		} catch (err) {
			this.core.logger.debug(`Could not record the pull of '${terminalId}': ${(err as Error).message}`);
		}
	}

	/** A terminal was updated (disabled, relabelled, draining, its key rotated): read its record again when needed. */
	forgetTerminal(terminalId: string): void {
		this.core.terminals.invalidate(terminalId);
		this.core.book.mayHaveWork(terminalId);
	}

	async list(params: ListParams) {
		const page = params.page ?? 1;
		const pageSize = params.pageSize ?? 20;
		const { rows, total } = await this.core.store.page(params, page, pageSize);
		return { rows: rows.map(toView), total, page, pageSize, totalPages: Math.ceil(total / pageSize) };
	}

	/** Resolves when no sweep, drain or send is under way (or after `timeoutMs`), and the writes are committed. */
	async idle(timeoutMs: number): Promise<void> {
		const { core } = this;
		const deadline = Date.now() + timeoutMs;
		while ((this.deadlines.isSweeping || core.locks.size > 0 || core.outbox.busy) && Date.now() < deadline) {
			await core.outbox.drained();
			if (this.deadlines.isSweeping || core.locks.size > 0) await new Promise(resolve => setTimeout(resolve, 10));
		}
		core.outbox.flushEvents();
		await core.store.commits.drained();
	}
}
