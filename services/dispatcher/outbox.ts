/**
 * What the dispatcher sends out after a durable change: status events to whoever follows, and
 * messages to terminals through the gateway node that holds their session. Both go in batches
 * (lib/batcher.ts): each `task.statuses` reaches every node that listens, and one message per
 * change cost more than the change itself.
 */
import type { Logger } from "moleculer";
import { TurnBatcher } from "../../lib/batcher.ts";
import { call, type Caller } from "../../lib/actions.ts";
import type { GatewayPush, Presence, TaskStatusEvent, TaskStatusesEvent } from "../../lib/contracts.ts";
import type { TaskRow } from "../../models/task.model.ts";
import { toStatusEvent } from "./views.ts";

/** Status events go out at most once per this long when busy, or once this many wait. */
const EVENTS_DELAY_MS = 5;
const EVENTS_BATCH = 1000;

/** The broker as the dispatcher's modules use it: calls, broadcasts, and its own node's id. */
export interface DispatcherPorts extends Caller {
	readonly nodeID: string;
	broadcast(event: string, payload: unknown): Promise<unknown> | void;
}

interface OutgoingPush {
	nodeID: string;
	push: GatewayPush;
	/** When it was queued, by the monotonic clock. */
	at: number;
	done(sent: boolean): void;
}

/**
 * A push still unsent this long after it was decided is dropped: the process was frozen (SIGSTOP,
 * a stalled VM) in between, and another replica may have taken the task since. The task stays as
 * the database has it — its owner's deadline sweep or re-push carries it on — rather than reach a
 * terminal as an attempt that may be superseded.
 */
export const STALE_PUSH_MS = 3000;

export class Outbox {
	private readonly ports: DispatcherPorts;
	private readonly logger: Logger;
	private readonly events: TurnBatcher<TaskStatusEvent>;
	private readonly pushes: TurnBatcher<OutgoingPush>;

	private readonly clock: () => number;

	/** `clock`: the monotonic clock pushes are stamped with. */
	constructor(ports: DispatcherPorts, logger: Logger, clock: () => number = () => performance.now()) {
		this.ports = ports;
		this.logger = logger;
		this.clock = clock;
		this.events = new TurnBatcher<TaskStatusEvent>({
			maxItems: EVENTS_BATCH,
			minIntervalMs: EVENTS_DELAY_MS,
			flush: events =>
				void Promise.resolve(ports.broadcast("task.statuses", { events } satisfies TaskStatusesEvent)).catch(
					() => undefined
				)
		});
		this.pushes = new TurnBatcher<OutgoingPush>({ flush: batch => this.sendPushes(batch) });
	}

	/** A durable change, announced with the others of this turn (or a few milliseconds later when busy). */
	announce(row: TaskRow, extra?: Partial<TaskStatusEvent>): void {
		this.events.add(toStatusEvent(row, extra));
	}

	/** Sends the status events that wait now: a follower must see them before what comes next. */
	flushEvents(): void {
		this.events.flushNow();
	}

	/** One message to a terminal's session, sent with the others of this turn to its gateway node. */
	push(presence: Presence, message: Pick<GatewayPush, "event" | "data">): Promise<boolean> {
		return new Promise(done => {
			const push = { terminalId: presence.terminalId, sessionId: presence.sessionId, ...message } as GatewayPush;
			this.pushes.add({ nodeID: presence.nodeID, push, at: this.clock(), done });
		});
	}

	get busy(): boolean {
		return this.pushes.busy || this.events.busy;
	}

	async drained(): Promise<void> {
		this.events.flushNow();
		await this.pushes.drained();
	}

	/** One `gateway.pushMany` per gateway node. */
	private sendPushes(batch: OutgoingPush[]): void {
		const byNode = new Map<string, OutgoingPush[]>();
		const now = this.clock();
		let stale = 0;
		for (const item of batch) {
			if (now - item.at > STALE_PUSH_MS) {
				stale++;
				item.done(true);
				continue;
			}
			const list = byNode.get(item.nodeID);
			if (list) list.push(item);
			else byNode.set(item.nodeID, [item]);
		}
		if (stale > 0)
			this.logger.warn(`Dropped ${stale} push(es) decided ${STALE_PUSH_MS} ms or more ago: this process was held`);
		for (const [nodeID, items] of byNode)
			call(this.ports, "gateway.pushMany", { pushes: items.map(i => i.push) }, { nodeID }).then(
				sent => items.forEach((item, i) => item.done(sent[i] === true)),
				err => {
					this.logger.debug(`Pushes to ${nodeID} failed: ${(err as Error).message}`);
					for (const item of items) item.done(false);
				}
			);
	}
}
