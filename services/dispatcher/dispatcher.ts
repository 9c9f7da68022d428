/**
 * The dispatcher's core: submit, routing, delivery, the terminal's replies, and the sweep
 * that enforces deadlines.
 */
import { performance } from "node:perf_hooks";
import type { Logger, ServiceBroker } from "moleculer";
import { Op, type WhereOptions } from "sequelize";
import { LRUCache } from "lru-cache";
import { OwnerCache } from "../../lib/owners.ts";
import {
	FINAL_STATUSES,
	type GatewayPush,
	type ReplyAnswer,
	type TerminalReply,
	type Backoff,
	type Presence,
	type Principal,
	type Selector,
	type TaskLogLine,
	type SocketErrorPayload,
	type StrategyName,
	type SubmitResult,
	type TaskPush,
	type TaskStatusEvent,
	type TaskStatusesEvent,
	type TaskStatus,
	type TerminalRecord
} from "../../lib/contracts.ts";
import { Errors, fromErrorPayload, toErrorPayload } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { labelsMatch, normalizeLabels } from "../../lib/labels.ts";
import { backoffDelay } from "../../lib/backoff.ts";
import { KeyedLock } from "../../lib/keyed-lock.ts";
import {
	resolve as resolveStrategy,
	rendezvousOwner,
	ConsistentHashStrategy,
	type Candidate,
	type Strategy
} from "../../lib/strategies/index.ts";
import type { TaskRow } from "../../models/task.model.ts";
import type { DispatcherSettings } from "./settings.ts";
import type { Expect, TaskStore } from "./store.ts";
import { DuplicateKeyError } from "./sql.ts";
import { PresenceMirror, TerminalRecords } from "./presence.ts";
import { toPush, toStatusEvent, toView } from "./views.ts";
import type { ListParams, ProgressActionParams, ResultActionParams, SubmitParams } from "./params.ts";

type Delivery = { push: Presence } | { pull: true };
type FinalFields = Pick<Partial<TaskRow>, "output" | "error" | "exitCode">;

/** Tasks admitted together at most: the store writes up to this many rows in one statement. */
const ADMIT_CHUNK = 500;

/** Status events are sent together: at most once per this long, or once this many wait. */
const EVENTS_DELAY_MS = 5;
const EVENTS_BATCH = 1000;

/** Selector tasks looked at per drain. */
const SELECTOR_SCAN = 200;

function parseJson<T>(text: string | null): T | null {
	return text === null ? null : (JSON.parse(text) as T);
}

/**
 * A terminal that named its capabilities (its runners) takes selector tasks of those types only;
 * one that named none takes any. A task pinned to a terminal goes to it regardless.
 */
function takes(presence: Presence, type: string): boolean {
	return !presence.capabilities || presence.capabilities.includes(type);
}

function byQueueOrder(a: TaskRow, b: TaskRow): number {
	return b.priority - a.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Held by its terminal: counts against the terminal's concurrency. */
function holds(row: TaskRow): string | null {
	return (row.status === "DELIVERED" || row.status === "PROCESSING") && row.terminalId ? row.terminalId : null;
}

function seconds(ms: number): string {
	return `${ms / 1000}s`;
}

export interface DispatcherDeps {
	broker: ServiceBroker;
	logger: Logger;
	settings: DispatcherSettings;
	store: TaskStore;
}

/**
 * The task state machine. The service owns one, built when its database is connected, and
 * maps actions and the sweep timer onto it.
 */
export class Dispatcher {
	readonly broker: ServiceBroker;
	readonly logger: Logger;
	readonly settings: DispatcherSettings;
	readonly store: TaskStore;
	private readonly locks = new KeyedLock();
	/** Drains asked for while one runs: one follow-up drain serves them all. */
	private readonly queuedDrains = new Map<string, Promise<void>>();
	private readonly strategies = new Map<string, Strategy>(
		["round_robin", "random", "least_busy", "consistent_hash"].map(name => [name, resolveStrategy(name)])
	);
	private sweeping = false;
	/** Tasks whose output passed the bound (logged once each). */
	private readonly truncated = new Set<string>();
	private lastPrune = 0;
	private lastRescan = 0;
	/** Live dispatcher nodes. Each terminal's queue and deadlines belong to one of them (see ownerOf). */
	private owners: string[];
	private departure: { owners: string[]; nodeIDs: string[] } | null = null;
	private readonly ownerCache = new OwnerCache();
	/** Who is connected where, and the terminals' records: kept here rather than asked for per drain. */
	readonly presence = new PresenceMirror();
	readonly terminals: TerminalRecords;
	/**
	 * The last state this replica wrote or read of recent tasks. A hint only: every change is still
	 * a compare-and-set in the database, and a stale row fails it and is read again.
	 */
	private readonly rows = new LRUCache<string, TaskRow>({ max: 100_000 });
	/**
	 * Tasks each terminal this replica owns holds (DELIVERED or PROCESSING), counted once from the
	 * database and kept by this replica's own changes. A slot is taken (+1) before a delivery is
	 * written, so pushes decided concurrently never exceed the terminal's concurrency.
	 */
	private readonly held = new Map<string, number>();
	/** Owned terminals whose own queue was found empty and has had nothing queued here since. */
	private readonly emptyQueues = new Set<string>();
	/** Bumped whenever a task is queued for a terminal, so a drain knows its "empty" is still true. */
	private readonly queued = new Map<string, number>();
	/** Selector tasks may be waiting: false once a scan found none and none was queued since. */
	private selectorsWaiting = true;
	private selectorEpoch = 0;
	/** Status events of this turn, sent as one `task.statuses`. */
	private events: TaskStatusEvent[] = [];
	/** Pushes of this turn, one `gateway.pushMany` per gateway node. */
	private pushes = new Map<string, { items: GatewayPush[]; done: ((sent: boolean) => void)[] }>();
	private flushScheduled = false;
	private eventTimer: NodeJS.Timeout | NodeJS.Immediate | null = null;
	private lastEventsAt = 0;

	constructor(deps: DispatcherDeps) {
		this.broker = deps.broker;
		this.logger = deps.logger;
		this.settings = deps.settings;
		this.store = deps.store;
		this.owners = [this.broker.nodeID];
		this.terminals = new TerminalRecords(this.broker);
	}

	// ---------------------------------------------------------------- ownership

	/**
	 * With several dispatcher replicas, the work of one terminal — drains, pulls, deadlines — runs
	 * on the replica that owns it, chosen by rendezvous hashing over the live replicas. Only the
	 * keys of a replica that leaves move. While views of the membership differ for a moment, two
	 * replicas may both act: every state change is a compare-and-set, so one of them wins.
	 */
	setOwners(nodeIDs: string[]): void {
		const owners = new Set(nodeIDs);
		owners.add(this.broker.nodeID);
		const next = [...owners].sort();
		if (next.join() === this.owners.join()) return;
		const gone = this.owners.filter(id => !owners.has(id));
		if (gone.length > 0)
			this.departure = {
				owners: this.departure?.owners ?? this.owners,
				nodeIDs: [...new Set([...(this.departure?.nodeIDs ?? []), ...gone])]
			};
		this.owners = next;
		// Terminals moved: what this replica knew of their queues and slots is counted again.
		this.held.clear();
		this.emptyQueues.clear();
		this.selectorsWaiting = true;
	}

	ownerOf(key: string): string {
		return this.ownerCache.owner(key, this.owners) ?? this.broker.nodeID;
	}

	owns(key: string): boolean {
		return this.ownerOf(key) === this.broker.nodeID;
	}

	/** The key a task's deadlines are owned by: its terminal, else its own id. */
	private keyOf(row: TaskRow): string {
		return row.terminalId ?? row.target ?? row.id;
	}

	// ---------------------------------------------------------------- submit

	async submitTask(body: SubmitParams, principal?: Principal, forwarded = false): Promise<SubmitResult> {
		// A task for one terminal is taken in by the replica that owns the terminal, which can then
		// often write it as delivered and push it at once.
		if (body.terminalId && !forwarded && !this.owns(body.terminalId)) {
			const [answer] = await this.forward([body], this.ownerOf(body.terminalId), principal);
			if (answer) {
				if ("error" in answer) throw fromErrorPayload(answer.error);
				return answer;
			}
		}
		const { payload, strategy } = await this.checkBody(body);
		const now = Date.now();
		if (body.idempotencyKey) {
			const earlier = await this.earlierSubmit(body.idempotencyKey, now);
			if (earlier) return earlier;
		}
		const template = this.rowFor(body, payload, strategy, principal, now);

		let rows: TaskRow[];
		if (strategy === "broadcast" || strategy === "sharding") {
			const targets = await this.fanOutTargets(body.selector?.labels, strategy);
			if (targets.length === 0) throw Errors.noMatchingTerminal(body.selector?.labels ?? {});
			const groupId = uuidv7(now);
			rows = targets.map((terminalId, index) => ({
				...template,
				id: uuidv7(now),
				target: terminalId,
				groupId,
				idempotencyKey: index === 0 ? template.idempotencyKey : null,
				shardIndex: strategy === "sharding" ? index : null,
				shardTotal: strategy === "sharding" ? targets.length : null
			}));
		} else {
			rows = [{ ...template, id: uuidv7(now) }];
		}

		try {
			await this.admit(rows, now);
		} catch (err) {
			// Two submits with one key raced; the loser answers with the winner's task.
			if (err instanceof DuplicateKeyError && body.idempotencyKey) {
				const earlier = await this.earlierSubmit(body.idempotencyKey, now);
				if (earlier) return earlier;
			}
			throw err;
		}
		// A fan-out always names its tasks, even when one terminal matched (as a repeated submit does).
		return rows[0].groupId === null ? { taskId: rows[0].id } : { taskId: rows[0].id, taskIds: rows.map(r => r.id) };
	}

	/** Submits bodies on the replica `nodeID` (the owner of their terminals); [] when it could not be reached. */
	private async forward(
		bodies: SubmitParams[],
		nodeID: string,
		principal?: Principal
	): Promise<(SubmitResult | { error: SocketErrorPayload })[]> {
		try {
			return await this.broker.call<
				(SubmitResult | { error: SocketErrorPayload })[],
				{ tasks: SubmitParams[]; principal?: Principal }
			>("dispatcher.submitOwned", { tasks: bodies, principal }, { nodeID });
		} catch (err) {
			// The owner is leaving or gone: take the tasks in here, as any replica may.
			this.logger.debug(`Forwarding ${bodies.length} submit(s) to ${nodeID} failed: ${(err as Error).message}`);
			return [];
		}
	}

	/**
	 * Writes new tasks and sets them going. A task for an owned, connected, idle terminal with a
	 * free slot is written straight as DELIVERED and pushed: one write and no queue on its path.
	 * The others are written PENDING and routed. Throws what the insert throws (DuplicateKeyError).
	 */
	private async admit(rows: TaskRow[], now: number): Promise<void> {
		const direct: { row: TaskRow; presence: Presence }[] = [];
		const written = rows.map(row => {
			const presence = this.claimDirect(row);
			if (!presence) {
				this.queuedFor(row);
				return row;
			}
			const delivered: TaskRow = {
				...row,
				status: "DELIVERED",
				terminalId: row.target,
				attempt: 1,
				deliveries: 1,
				deliveredAt: now,
				deadlineAt: now + row.ackTimeoutMs,
				expiresAt: null
			};
			direct.push({ row: delivered, presence });
			return delivered;
		});
		try {
			await this.store.insert(written);
		} catch (err) {
			for (const { row } of direct) this.adjust(row.terminalId!, -1);
			throw err;
		}
		for (const row of written) this.rows.set(row.id, row);
		// A task written straight as DELIVERED was never PENDING for anyone to see: one event.
		for (const row of written) this.announce(row);
		for (const { row, presence } of direct) {
			void this.pushTask(row, presence).catch(err => this.logger.error("Push failed", row.id, err));
		}
		// A terminal's queue drains as a whole: one drain per named terminal, not one per task.
		const targets = new Set<string>();
		const routed: TaskRow[] = [];
		for (const row of written) {
			if (row.status !== "PENDING") continue;
			if (row.target && targets.has(row.target)) continue;
			if (row.target) targets.add(row.target);
			routed.push(row);
		}
		await Promise.all(routed.map(row => this.route(row).catch(err => this.logger.error("Routing failed", row.id, err))));
	}

	/** A slot for a new task on its terminal, taken now, if it may skip the queue; its presence then. */
	private claimDirect(row: TaskRow): Presence | null {
		const terminalId = row.target;
		if (!terminalId || row.notBefore !== null || !this.emptyQueues.has(terminalId) || !this.owns(terminalId)) return null;
		const presence = this.presence.get(terminalId);
		const held = this.held.get(terminalId);
		if (!presence || held === undefined || held >= presence.concurrency) return null;
		this.held.set(terminalId, held + 1);
		return presence;
	}

	/** A task is (again) PENDING: its terminal's queue is not empty, or selector tasks wait. */
	private queuedFor(row: TaskRow): void {
		if (row.target) {
			this.emptyQueues.delete(row.target);
			this.queued.set(row.target, (this.queued.get(row.target) ?? 0) + 1);
		} else {
			this.selectorsWaiting = true;
			this.selectorEpoch++;
		}
	}

	/** Takes a slot of an owned terminal whose count is known; false when it has none free. */
	private reserve(terminalId: string, concurrency: number): boolean {
		const held = this.held.get(terminalId);
		if (held === undefined || held >= concurrency) return false;
		this.held.set(terminalId, held + 1);
		return true;
	}

	private adjust(terminalId: string, delta: number): void {
		const held = this.held.get(terminalId);
		if (held !== undefined) this.held.set(terminalId, Math.max(0, held + delta));
	}

	/** Tasks an owned terminal holds, counted in the database the first time. */
	private async heldBy(terminalId: string): Promise<number> {
		const known = this.held.get(terminalId);
		if (known !== undefined) return known;
		const counted = (await this.store.inflight([terminalId])).get(terminalId) ?? 0;
		// A change made while counting has already adjusted a count set meanwhile; keep that one.
		const now = this.held.get(terminalId);
		if (now !== undefined) return now;
		this.held.set(terminalId, counted);
		return counted;
	}

	/**
	 * The compare-and-set of a change, and what this replica keeps in step with it: the row, the
	 * terminals' held counts and queue hints. `reserved`: a slot already taken for the terminal
	 * the change hands the task to. Null when the task was no longer as expected.
	 */
	private async apply(
		row: TaskRow,
		changes: Partial<TaskRow>,
		expect: Expect = { status: row.status, attempt: row.attempt },
		reserved?: string
	): Promise<TaskRow | null> {
		if (!(await this.store.transition(row.id, expect, changes))) {
			if (reserved) this.adjust(reserved, -1);
			this.rows.delete(row.id);
			return null;
		}
		const next: TaskRow = { ...row, ...changes };
		const was = holds(row);
		const is = holds(next);
		if (was !== is) {
			if (was) this.adjust(was, -1);
			if (is && is !== reserved) this.adjust(is, +1);
		}
		if (reserved && reserved !== is) this.adjust(reserved, -1);
		if (next.status === "PENDING" && row.status !== "PENDING") this.queuedFor(next);
		this.rows.set(next.id, next);
		return next;
	}

	/**
	 * What the validator cannot check: target xor selector, the hash key, payload size, the terminal.
	 * `terminals`: lookups shared by a batch, so that each terminal is resolved once.
	 */
	private async checkBody(
		body: SubmitParams,
		terminals?: Map<string, Promise<TerminalRecord | null>>
	): Promise<{ payload: string | null; strategy: StrategyName }> {
		if (Boolean(body.terminalId) === Boolean(body.selector))
			throw Errors.validation("Give either 'terminalId' or 'selector' (and not both)", [
				{ field: "terminalId", message: "Give either 'terminalId' or 'selector' (and not both)" }
			]);
		const strategy = body.selector?.strategy ?? "round_robin";
		if (strategy === "consistent_hash" && !body.selector?.key)
			throw Errors.validation("'selector.key' is required by strategy 'consistent_hash'", [
				{ field: "selector.key", message: "'selector.key' is required by strategy 'consistent_hash'" }
			]);
		const payload = body.payload === undefined ? null : JSON.stringify(body.payload);
		const bytes = payload === null ? 0 : Buffer.byteLength(payload);
		if (bytes > this.settings.maxPayloadBytes) throw Errors.payloadTooLarge(bytes, this.settings.maxPayloadBytes);
		if (body.terminalId) {
			let resolving = terminals?.get(body.terminalId);
			if (!resolving) {
				resolving = this.broker.call<TerminalRecord | null, { id: string }>("terminals.resolve", { id: body.terminalId });
				terminals?.set(body.terminalId, resolving);
			}
			if (!(await resolving)) throw Errors.terminalNotFound(body.terminalId);
		}
		return { payload, strategy };
	}

	/** A new PENDING row for a task body (no id yet). */
	private rowFor(
		body: SubmitParams,
		payload: string | null,
		strategy: StrategyName,
		principal: Principal | undefined,
		now: number
	): TaskRow {
		const defaults = this.settings.defaults;
		const ttlMs = Math.round((body.ttl ?? defaults.ttl) * 1000);
		const selector: Selector | null = body.selector
			? { ...body.selector, labels: normalizeLabels(body.selector.labels), strategy }
			: null;
		return {
			id: "",
			status: "PENDING",
			type: body.type,
			payload,
			target: body.terminalId ?? null,
			selector: selector ? JSON.stringify({ ...selector, labels: body.selector?.labels ?? {} }) : null,
			terminalId: null,
			priority: body.priority ?? defaults.priority,
			timeoutMs: Math.round((body.timeout ?? defaults.timeout) * 1000),
			ackTimeoutMs: Math.round((body.ackTimeout ?? defaults.ackTimeout) * 1000),
			ttlMs,
			maxRetries: body.maxRetries ?? defaults.maxRetries,
			retries: 0,
			backoff: body.backoff ? JSON.stringify(body.backoff) : null,
			attempt: 0,
			deliveries: 0,
			idempotencyKey: body.idempotencyKey ?? null,
			groupId: null,
			shardIndex: null,
			shardTotal: null,
			output: null,
			error: null,
			exitCode: null,
			progress: null,
			createdBy: principal ? (principal.kind === "user" ? principal.username : `terminal:${principal.terminalId}`) : null,
			createdAt: now,
			updatedAt: now,
			deliveredAt: null,
			startedAt: null,
			finishedAt: null,
			expiresAt: now + ttlMs,
			notBefore: null,
			deadlineAt: null
		};
	}

	/**
	 * Many tasks at once (the scheduler's fires of one tick): one INSERT for all of them, then each
	 * is routed. Each answer is the task's SubmitResult or its error; fan-out bodies go one submit
	 * each, and so does the whole batch if an idempotency key in it is taken (rare: a scheduler fire
	 * is claimed before it is submitted), each then answering with its earlier task.
	 */
	async submitBatch(
		bodies: SubmitParams[],
		principal?: Principal,
		forwarded = false
	): Promise<(SubmitResult | { error: SocketErrorPayload })[]> {
		const results: (SubmitResult | { error: SocketErrorPayload } | undefined)[] = new Array(bodies.length);
		const single = async (i: number) => {
			try {
				results[i] = await this.submitTask(bodies[i], principal, true);
			} catch (err) {
				results[i] = { error: toErrorPayload(err) };
			}
		};
		// Tasks for terminals another replica owns go to it, in one call per replica.
		const here: number[] = [];
		const elsewhere = new Map<string, number[]>();
		for (const [index, body] of bodies.entries()) {
			const owner = body.terminalId && !forwarded ? this.ownerOf(body.terminalId) : this.broker.nodeID;
			if (owner === this.broker.nodeID) here.push(index);
			else elsewhere.set(owner, [...(elsewhere.get(owner) ?? []), index]);
		}
		const forwarding = [...elsewhere].map(async ([nodeID, indexes]) => {
			const answers = await this.forward(
				indexes.map(i => bodies[i]),
				nodeID,
				principal
			);
			if (answers.length === indexes.length) indexes.forEach((index, k) => (results[index] = answers[k]));
			else here.push(...indexes);
		});
		await Promise.all(forwarding);

		const now = Date.now();
		const rows: { index: number; row: TaskRow }[] = [];
		const fallback: number[] = [];
		const terminals = new Map<string, Promise<TerminalRecord | null>>();
		for (const index of here.sort((a, b) => a - b)) {
			const body = bodies[index];
			const strategy = body.selector?.strategy;
			if (strategy === "broadcast" || strategy === "sharding") {
				fallback.push(index);
				continue;
			}
			try {
				const { payload, strategy: chosen } = await this.checkBody(body, terminals);
				rows.push({ index, row: { ...this.rowFor(body, payload, chosen, principal, now), id: uuidv7(now) } });
			} catch (err) {
				results[index] = { error: toErrorPayload(err) };
			}
		}
		// One INSERT statement per chunk, so that a taken key fails its chunk only, and whole.
		const chunks: (typeof rows)[] = [];
		for (let start = 0; start < rows.length; start += ADMIT_CHUNK) chunks.push(rows.slice(start, start + ADMIT_CHUNK));
		await Promise.all(
			chunks.map(async chunk => {
				try {
					await this.admit(
						chunk.map(r => r.row),
						now
					);
					for (const { index, row } of chunk) results[index] = { taskId: row.id };
				} catch (err) {
					if (!(err instanceof DuplicateKeyError)) throw err;
					fallback.push(...chunk.map(r => r.index));
				}
			})
		);
		for (const index of fallback) await single(index);
		return results as (SubmitResult | { error: SocketErrorPayload })[];
	}

	/** The earlier task of an idempotency key still within its window; frees a key past it. */
	async earlierSubmit(key: string, now: number): Promise<SubmitResult | null> {
		const earlier = await this.store.byIdempotencyKey(key);
		if (!earlier) return null;
		if (now - Number(earlier.createdAt) >= this.settings.idempotencyWindow) {
			await this.store.releaseKey(earlier.id, key);
			return null;
		}
		if (earlier.groupId) {
			const group = await this.store.byGroup(earlier.groupId);
			return { taskId: earlier.id, taskIds: group.map(r => r.id), duplicate: true };
		}
		return { taskId: earlier.id, duplicate: true };
	}

	/** Broadcast: every enabled matching terminal. Sharding: the online ones, else all registered. */
	async fanOutTargets(labels: Selector["labels"], strategy: "broadcast" | "sharding"): Promise<string[]> {
		const registered = (await this.broker.call<TerminalRecord[], Record<string, never>>("terminals.matching", {})).filter(t =>
			labelsMatch(labels, t.labels)
		);
		if (strategy === "broadcast") return registered.map(t => t.id);
		const online = new Set(this.presenceList().map(p => p.terminalId));
		const live = registered.filter(t => online.has(t.id));
		return (live.length > 0 ? live : registered).map(t => t.id);
	}

	// ---------------------------------------------------------------- routing

	/** Finds who should take a PENDING task now and lets that terminal drain its queue. */
	async route(row: TaskRow): Promise<void> {
		if (row.target) return this.requestDrain(row.target);
		// A selector task is waiting, whatever this replica believed: drains here scan for it.
		this.selectorsWaiting = true;
		this.selectorEpoch++;
		const selector = parseJson<Selector>(row.selector) ?? {};
		const matching = this.presence.list().filter(p => labelsMatch(selector.labels, p.labels) && takes(p, row.type));
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

	async candidates(online: Presence[]): Promise<Candidate[]> {
		// Counts this replica keeps where it has them; the rest from the database in one query.
		const unknown = online.filter(p => !this.held.has(p.terminalId)).map(p => p.terminalId);
		const counted = await this.store.inflight(unknown);
		return online.map(p => ({
			terminalId: p.terminalId,
			labels: p.labels,
			concurrency: p.concurrency,
			inflight: this.held.get(p.terminalId) ?? counted.get(p.terminalId) ?? 0
		}));
	}

	/** Drains a terminal's queue on the replica that owns it. */
	requestDrain(terminalId: string, presence?: Presence): Promise<void> {
		const owner = this.ownerOf(terminalId);
		if (owner === this.broker.nodeID) return this.drainHere(terminalId, presence);
		return this.broker.call<unknown, { terminalId: string }>("dispatcher.drain", { terminalId }, { nodeID: owner }).then(
			() => undefined,
			err => {
				// The owner is leaving or gone: drain here rather than leave the queue waiting.
				this.logger.warn(`Drain of '${terminalId}' on ${owner} failed (${(err as Error).message}); draining here`);
				return this.drainHere(terminalId, presence);
			}
		);
	}

	/**
	 * Another replica asks: it may have queued tasks for the terminal, or changed what it holds,
	 * so what this replica knew of its queue and slots is read again.
	 */
	drainAsked(terminalId: string): Promise<void> {
		this.emptyQueues.delete(terminalId);
		this.held.delete(terminalId);
		this.selectorsWaiting = true;
		this.selectorEpoch++;
		return this.drainHere(terminalId);
	}

	/** Drains a terminal's queue under its lock here; requests made meanwhile share one follow-up drain. */
	drainHere(terminalId: string, presence?: Presence): Promise<void> {
		const queued = this.queuedDrains.get(terminalId);
		if (queued) return queued;
		const drain = this.locks.run(terminalId, async () => {
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
		const presence = hint ?? this.presence.get(terminalId);
		if (!presence) return;
		const terminal = await this.terminals.get(terminalId);
		if (!terminal?.enabled) return;
		const free = presence.concurrency - (await this.heldBy(terminalId));
		if (free <= 0) return;
		const now = Date.now();
		const rows = await this.collectFor(terminalId, presence.labels, free, now, ownOnly, presence.capabilities);
		const deliveries: Promise<unknown>[] = [];
		for (const row of rows) {
			if (!this.reserve(terminalId, presence.concurrency)) {
				// Slots went to new tasks meanwhile: the queue is not empty after all.
				this.emptyQueues.delete(terminalId);
				break;
			}
			deliveries.push(this.deliver(row, terminalId, now, { push: presence }, true));
		}
		await Promise.all(deliveries);
	}

	/** Up to `limit` due tasks this terminal may take: its own queue merged with matching selector tasks. */
	async collectFor(
		terminalId: string,
		labels: Record<string, string>,
		limit: number,
		now: number,
		ownOnly = false,
		capabilities?: string[]
	): Promise<TaskRow[]> {
		let pinned: TaskRow[] = [];
		if (!this.emptyQueues.has(terminalId) || !this.owns(terminalId)) {
			const epoch = this.queued.get(terminalId);
			pinned = await this.store.pendingPinned(terminalId, now, limit);
			// Found empty, and nothing queued for it here meanwhile: skip the query until something is.
			if (pinned.length < limit && this.queued.get(terminalId) === epoch && this.owns(terminalId))
				this.emptyQueues.add(terminalId);
		}
		if (ownOnly || !this.selectorsWaiting) return pinned;
		const epoch = this.selectorEpoch;
		const waiting = await this.store.pendingUnassigned(now, SELECTOR_SCAN);
		if (waiting.length === 0 && this.selectorEpoch === epoch) this.selectorsWaiting = false;
		const open: TaskRow[] = [];
		for (const row of waiting) {
			const selector = parseJson<Selector>(row.selector) ?? {};
			if (!labelsMatch(selector.labels, labels) || (capabilities && !capabilities.includes(row.type))) continue;
			if (selector.strategy === "consistent_hash") {
				// The key's owner among the online matching terminals takes it, or nobody does yet.
				const matching = this.presence.list().filter(p => labelsMatch(selector.labels, p.labels) && takes(p, row.type));
				const owner = (this.strategies.get("consistent_hash") as ConsistentHashStrategy).owner(
					matching.map(p => ({ terminalId: p.terminalId, labels: p.labels, concurrency: p.concurrency, inflight: 0 })),
					selector.key ?? ""
				);
				if (owner?.terminalId !== terminalId) continue;
			}
			open.push(row);
			if (open.length >= limit) break;
		}
		if (open.length === 0) return pinned;
		return [...pinned, ...open].sort(byQueueOrder).slice(0, limit);
	}

	/**
	 * PENDING → DELIVERED as a new attempt, then the push (not waited for). "lost" when another
	 * actor took the task first. `reserved`: the terminal's slot is already taken (see reserve).
	 */
	async deliver(row: TaskRow, terminalId: string, now: number, how: Delivery, reserved = false): Promise<TaskRow | "lost"> {
		const attempt = row.attempt + 1;
		// A pulled task has no ack step over plain HTTP: it gets its whole run time before redelivery.
		const deadline = "pull" in how ? now + row.ackTimeoutMs + row.timeoutMs : now + row.ackTimeoutMs;
		const changes: Partial<TaskRow> = {
			status: "DELIVERED",
			terminalId,
			attempt,
			deliveries: row.deliveries + 1,
			deliveredAt: now,
			deadlineAt: deadline,
			expiresAt: null,
			notBefore: null,
			updatedAt: now
		};
		const delivered = await this.apply(
			row,
			changes,
			{ status: "PENDING", attempt: row.attempt },
			reserved ? terminalId : undefined
		);
		if (!delivered) return "lost";
		this.announce(delivered);
		// The push is not waited for: a gateway that died holds it until it is found dead (seconds),
		// and the drain — the terminal's lock — must not wait with it. A failed push returns the task.
		if ("push" in how) void this.pushTask(delivered, how.push).catch(err => this.logger.error("Push failed", row.id, err));
		return delivered;
	}

	/** Pushes a DELIVERED task; when its session is gone, the task goes back to the queue. */
	private async pushTask(row: TaskRow, presence: Presence): Promise<boolean> {
		const sent = await this.pushTo(presence, { event: "task", data: toPush(row) });
		if (!sent) {
			this.logger.debug(`Push of ${row.id} to ${presence.terminalId} found no session`);
			await this.returnToQueue(row, Date.now());
		}
		return sent;
	}

	/** One message to a terminal's session, sent with the others of this turn to its gateway node. */
	private pushTo(presence: Presence, message: Pick<GatewayPush, "event" | "data">): Promise<boolean> {
		return new Promise(resolve => {
			let batch = this.pushes.get(presence.nodeID);
			if (!batch) {
				batch = { items: [], done: [] };
				this.pushes.set(presence.nodeID, batch);
			}
			batch.items.push({ terminalId: presence.terminalId, sessionId: presence.sessionId, ...message } as GatewayPush);
			batch.done.push(resolve);
			this.scheduleFlush();
		});
	}

	/** DELIVERED → PENDING, same attempt: an ack or result of it is still accepted. */
	async returnToQueue(row: TaskRow, now: number): Promise<boolean> {
		const changes: Partial<TaskRow> = {
			status: "PENDING",
			deadlineAt: null,
			expiresAt: now + Number(row.ttlMs),
			updatedAt: now
		};
		const next = await this.apply(row, changes, { status: "DELIVERED", attempt: row.attempt });
		if (!next) return false;
		this.announce(next);
		return true;
	}

	/** Hands a terminal its due tasks over HTTP; runs on the terminal's owner (`forwarded` once there). */
	async pullTasks(terminalId: string, limit?: number, forwarded = false): Promise<TaskPush[]> {
		const terminal = await this.broker.call<TerminalRecord | null, { id: string }>("terminals.resolve", { id: terminalId });
		if (!terminal) throw Errors.terminalNotFound(terminalId);
		if (!terminal.enabled) throw Errors.terminalDisabled(terminalId);
		const owner = this.ownerOf(terminalId);
		if (!forwarded && owner !== this.broker.nodeID)
			return this.broker.call<TaskPush[], { terminalId: string; limit?: number }>(
				"dispatcher.pullOwned",
				{ terminalId, limit },
				{ nodeID: owner }
			);
		return this.locks.run(terminalId, async () => {
			const presence = this.presence.get(terminalId);
			const concurrency = presence?.concurrency ?? terminal.concurrency;
			const free = Math.min(limit ?? concurrency, concurrency - (await this.heldBy(terminalId)));
			if (free <= 0) return [];
			const now = Date.now();
			const pending: Promise<TaskRow | "lost">[] = [];
			for (const row of await this.collectFor(terminalId, terminal.labels, free, now)) {
				if (!this.reserve(terminalId, concurrency)) {
					this.emptyQueues.delete(terminalId);
					break;
				}
				pending.push(this.deliver(row, terminalId, now, { pull: true }, true));
			}
			const tasks: TaskPush[] = [];
			for (const delivered of await Promise.all(pending)) if (typeof delivered === "object") tasks.push(toPush(delivered));
			return tasks;
		});
	}

	// ---------------------------------------------------------------- the terminal's replies

	/**
	 * The attempt a terminal names must be the task's current one and be held by it. An older
	 * attempt is STALE_ATTEMPT, whoever sends it; another terminal's task is TASK_NOT_YOURS.
	 */
	checkHolder(row: TaskRow, terminalId: string, attempt: number): void {
		if (attempt < row.attempt) throw Errors.staleAttempt(row.id, attempt, row.attempt);
		if (row.terminalId !== terminalId) throw Errors.taskNotYours(row.id, terminalId);
		if (attempt !== row.attempt) throw Errors.staleAttempt(row.id, attempt, row.attempt);
	}

	/** A task the terminal holds: DELIVERED/PROCESSING, or returned to the queue from it (same attempt). */
	isHeld(row: TaskRow): boolean {
		return (
			row.status === "DELIVERED" || row.status === "PROCESSING" || (row.status === "PENDING" && row.deliveredAt !== null)
		);
	}

	async ackTask(
		terminalId: string,
		taskId: string,
		attempt: number
	): Promise<{ taskId: string; attempt: number; status: TaskStatus }> {
		// The row this replica last wrote is nearly always current (the terminal's owner delivered the
		// task); when it is not, the compare-and-set fails and the task is read again.
		for (let tries = 1; ; tries++) {
			const cached = tries === 1 ? this.rows.get(taskId) : undefined;
			const row = cached ?? (await this.mustGet(taskId));
			try {
				if (FINAL_STATUSES.has(row.status)) {
					if (attempt < row.attempt) throw Errors.staleAttempt(taskId, attempt, row.attempt);
					throw Errors.taskFinished(taskId, row.status);
				}
				this.checkHolder(row, terminalId, attempt);
				if (row.status === "PROCESSING") return { taskId, attempt, status: row.status };
				if (!this.isHeld(row)) throw Errors.taskNotStarted(taskId, row.status);
			} catch (err) {
				if (cached) continue;
				throw err;
			}
			const now = Date.now();
			const changes: Partial<TaskRow> = {
				status: "PROCESSING",
				startedAt: now,
				deadlineAt: now + row.timeoutMs,
				expiresAt: null,
				deliveries: 0,
				updatedAt: now
			};
			const next = await this.apply(row, changes, { status: row.status, attempt });
			if (next) {
				this.announce(next);
				return { taskId, attempt, status: "PROCESSING" };
			}
			if (tries >= 3) throw Errors.stateConflict(taskId);
		}
	}

	async recordProgress(terminalId: string, params: ProgressActionParams) {
		const row = await this.mustGet(params.taskId);
		this.rows.delete(row.id);
		if (FINAL_STATUSES.has(row.status)) throw Errors.taskFinished(row.id, row.status);
		this.checkHolder(row, terminalId, params.attempt);
		const now = Date.now();
		if (params.percent !== undefined)
			await this.store.transition(
				row.id,
				{ status: ["DELIVERED", "PROCESSING"], attempt: params.attempt },
				{
					progress: Math.round(params.percent),
					updatedAt: now
				}
			);
		if (params.log) {
			const kept = await this.store.appendLog(
				row.id,
				params.attempt,
				params.stream ?? "stdout",
				params.log,
				now,
				this.settings.maxLogLines
			);
			if (!kept && !this.truncated.has(row.id)) {
				this.truncated.add(row.id);
				this.logger.debug(
					`Output of task ${row.id} passed ${this.settings.maxLogLines} lines: the rest is relayed, not kept`
				);
			}
		}
		// Status events waiting to go out go first: a follower sees PROCESSING before the progress.
		this.sendEvents();
		void this.broker
			.broadcast("task.progress", {
				taskId: row.id,
				attempt: params.attempt,
				percent: params.percent,
				log: params.log,
				stream: params.log ? (params.stream ?? "stdout") : undefined,
				at: new Date(now).toISOString()
			})
			.catch(() => undefined);
		return { taskId: row.id, attempt: params.attempt, status: row.status };
	}

	/** The stored output of a task, after line `after`. */
	async taskLogs(taskId: string, after: number, limit: number): Promise<{ lines: TaskLogLine[]; next: number }> {
		await this.mustGet(taskId);
		const rows = await this.store.logs(taskId, after, limit);
		const lines = rows.map(r => ({
			seq: Number(r.seq),
			attempt: Number(r.attempt),
			stream: r.stream as TaskLogLine["stream"],
			text: r.text,
			at: new Date(Number(r.at)).toISOString()
		}));
		return { lines, next: lines.at(-1)?.seq ?? after };
	}

	async recordResult(
		terminalId: string,
		params: ResultActionParams
	): Promise<{ taskId: string; attempt: number; status: TaskStatus; duplicate?: boolean }> {
		// The compare-and-set fails when the task changed since it was read — by this attempt's own
		// ack, say, handled concurrently when the terminal sends its result without waiting for the
		// ack's reply. Read it again and decide anew rather than refuse the result.
		for (let tries = 1; ; tries++) {
			const cached = tries === 1 ? this.rows.get(params.taskId) : undefined;
			const row = cached ?? (await this.mustGet(params.taskId));
			try {
				if (FINAL_STATUSES.has(row.status)) {
					// The same result twice (a retried send) is acknowledged, not an error.
					if (
						row.attempt === params.attempt &&
						row.terminalId === terminalId &&
						(row.status === "COMPLETED" || row.status === "FAILED")
					)
						return { taskId: row.id, attempt: row.attempt, status: row.status, duplicate: true };
					if (params.attempt < row.attempt) throw Errors.staleAttempt(row.id, params.attempt, row.attempt);
					throw Errors.taskFinished(row.id, row.status);
				}
				this.checkHolder(row, terminalId, params.attempt);
				if (!this.isHeld(row)) throw Errors.taskNotStarted(row.id, row.status);
			} catch (err) {
				if (cached) continue;
				throw err;
			}
			const fields: FinalFields = {
				output: params.output === undefined ? null : JSON.stringify(params.output),
				error: params.error ?? null,
				exitCode: params.exitCode ?? null
			};
			const now = Date.now();
			const next =
				params.status === "success"
					? await this.finish(row, "COMPLETED", fields, now)
					: await this.retryOrFinish(row, "FAILED", fields, now);
			if (!next) {
				if (tries < 5) continue;
				throw Errors.stateConflict(row.id);
			}
			void this.requestDrain(terminalId).catch(err => this.logger.error("Drain failed", terminalId, err));
			return { taskId: row.id, attempt: row.attempt, status: next.status };
		}
	}

	/**
	 * A gateway's batch of terminal replies: each answered as `ack`/`result` would answer it. Replies
	 * about one task are handled in the order given (an ack before the result behind it); the
	 * others side by side, so that their writes share commits.
	 */
	async replies(replies: TerminalReply[]): Promise<ReplyAnswer[]> {
		const chains = new Map<string, Promise<unknown>>();
		return Promise.all(
			replies.map(reply => {
				const handle = async (): Promise<ReplyAnswer> => {
					try {
						const ok =
							reply.kind === "ack"
								? await this.ackTask(reply.terminalId, reply.taskId, reply.attempt)
								: await this.recordResult(reply.terminalId, reply);
						return { ok };
					} catch (err) {
						return { error: toErrorPayload(err, reply.kind) };
					}
				};
				const before = chains.get(reply.taskId);
				const answer = before ? before.then(handle) : handle();
				chains.set(reply.taskId, answer);
				return answer;
			})
		);
	}

	/** Writes a final state, from whatever non-final state `row` was read in. */
	async finish(row: TaskRow, status: TaskStatus, fields: FinalFields, now: number): Promise<TaskRow | null> {
		const changes: Partial<TaskRow> = {
			...fields,
			status,
			finishedAt: now,
			deadlineAt: null,
			expiresAt: null,
			notBefore: null,
			updatedAt: now
		};
		if (status === "COMPLETED") changes.progress = 100;
		const next = await this.apply(row, changes);
		if (next) this.announce(next);
		return next;
	}

	/** A failed or timed-out attempt: back to PENDING after the backoff while retries remain, else final. */
	async retryOrFinish(row: TaskRow, status: "FAILED" | "TIMEOUT", fields: FinalFields, now: number): Promise<TaskRow | null> {
		if (row.retries >= row.maxRetries) return this.finish(row, status, fields, now);
		const retry = row.retries + 1;
		const delay = backoffDelay(parseJson<Backoff>(row.backoff), retry);
		const changes: Partial<TaskRow> = {
			...fields,
			status: "PENDING",
			retries: retry,
			notBefore: delay > 0 ? now + delay : null,
			expiresAt: now + delay + Number(row.ttlMs),
			deadlineAt: null,
			deliveries: 0,
			// Not held by anyone now: a late reply to this attempt must not count.
			deliveredAt: null,
			startedAt: null,
			progress: null,
			updatedAt: now
		};
		const next = await this.apply(row, changes);
		if (!next) return null;
		this.announce(next, { retry, error: fields.error ?? `attempt ${row.attempt} ended ${status}` });
		if (delay === 0) void this.route(next).catch(err => this.logger.error("Routing failed", row.id, err));
		return next;
	}

	async cancelTask(taskId: string): Promise<TaskRow> {
		for (let tries = 0; tries < 5; tries++) {
			const row = await this.mustGet(taskId);
			if (FINAL_STATUSES.has(row.status)) throw Errors.taskFinished(taskId, row.status);
			const next = await this.finish(row, "CANCELLED", { error: "cancelled" }, Date.now());
			if (!next) continue;
			if ((row.status === "DELIVERED" || row.status === "PROCESSING") && row.terminalId) {
				await this.tellTerminal(row.terminalId, "cancel", { taskId, attempt: row.attempt, reason: "cancelled" });
				void this.requestDrain(row.terminalId).catch(() => undefined);
			}
			return next;
		}
		throw Errors.stateConflict(taskId);
	}

	// ---------------------------------------------------------------- connections

	/**
	 * A session of this terminal closed: its DELIVERED tasks return to the queue, except those
	 * delivered to a newer session that is already up.
	 */
	async returnDelivered(terminalId: string, current?: Presence): Promise<void> {
		if (current) this.presence.set(current);
		const presence = current ?? this.presenceOf(terminalId);
		const now = Date.now();
		const rows = await this.store.delivered(terminalId, presence?.connectedAt);
		await Promise.all(
			rows.map(async row => {
				if ((await this.returnToQueue(row, now)) && !row.target)
					await this.route({ ...row, status: "PENDING" }).catch(err =>
						this.logger.error("Routing failed", row.id, err)
					);
			})
		);
		// A new session: what this replica counted for the old one is counted again.
		this.held.delete(terminalId);
		this.emptyQueues.delete(terminalId);
		if (presence) await this.requestDrain(terminalId, presence);
	}

	/**
	 * After a restart, or when a replica left: DELIVERED tasks of terminals that are not connected
	 * go back to the queue. Those of connected terminals that `departed` owned are pushed again, same
	 * attempt: the replica that wrote them may have died before its push went out, and a terminal
	 * drops a repeat of an attempt it already has.
	 */
	async recoverDelivered(departed?: { owners: string[]; nodeIDs: string[] }): Promise<void> {
		const now = Date.now();
		let returned = 0;
		let repushed = 0;
		const mine = (await this.store.allDelivered(100_000)).filter(row => this.owns(this.keyOf(row)));
		const pushes: Promise<unknown>[] = [];
		for (let start = 0; start < mine.length; start += 1000) {
			const done = await Promise.all(
				mine.slice(start, start + 1000).map(row => {
					const presence = row.terminalId ? this.presence.get(row.terminalId) : null;
					if (!presence) return this.returnToQueue(row, now);
					const previous = departed ? rendezvousOwner(this.keyOf(row), departed.owners) : null;
					if (previous && departed?.nodeIDs.includes(previous)) {
						repushed++;
						pushes.push(this.pushTo(presence, { event: "task", data: toPush(row) }));
					}
					return false;
				})
			);
			returned += done.filter(Boolean).length;
		}
		await Promise.all(pushes);
		if (returned > 0) this.logger.info(`Returned ${returned} delivered task(s) of offline terminals to the queue`);
		if (repushed > 0) this.logger.info(`Pushed ${repushed} delivered task(s) of a replica that left again`);
	}

	/** Replicas that left since last asked, and the membership they left (for recoverDelivered). */
	takeDeparture(): { owners: string[]; nodeIDs: string[] } | undefined {
		const departure = this.departure ?? undefined;
		this.departure = null;
		return departure;
	}

	// ---------------------------------------------------------------- deadlines

	/** Enforces ack and processing deadlines, ttl expiry and retry wake-ups; re-checks queues now and then. */
	get isSweeping(): boolean {
		return this.sweeping;
	}

	/** Resolves when no sweep and no drain is running (or after `timeoutMs`). */
	async idle(timeoutMs: number): Promise<void> {
		const deadline = Date.now() + timeoutMs;
		while ((this.sweeping || this.locks.size > 0 || this.flushScheduled) && Date.now() < deadline)
			await new Promise(resolve => setTimeout(resolve, 10));
		this.sendEvents();
		await this.store.commits.drained();
	}

	async sweep(): Promise<void> {
		if (this.sweeping) return;
		this.sweeping = true;
		try {
			const now = Date.now();
			const batch = this.settings.sweepBatch;
			const mine = (rows: TaskRow[]) => rows.filter(row => this.owns(this.keyOf(row)));
			// Rows side by side: their writes share commits, and a late row does not wait for the others.
			const each = async (rows: TaskRow[], handle: (row: TaskRow) => Promise<unknown>) => {
				await Promise.all(rows.map(row => handle(row).catch(err => this.logger.error("Deadline of", row.id, err))));
			};
			await each(mine(await this.store.due("DELIVERED", "deadlineAt", now, batch)), row => this.onAckTimeout(row, now));
			await each(mine(await this.store.due("PROCESSING", "deadlineAt", now, batch)), row => this.onRunTimeout(row, now));
			await each(mine(await this.store.due("PENDING", "expiresAt", now, batch)), row =>
				this.finish(row, "EXPIRED", { error: `not delivered within its ttl of ${seconds(Number(row.ttlMs))}` }, now)
			);
			await each(mine(await this.store.due("PENDING", "notBefore", now, batch)), async row => {
				const due = await this.apply(row, { notBefore: null }, { status: "PENDING", attempt: row.attempt });
				if (due) {
					this.queuedFor(due);
					await this.route(due);
				}
			});
			if (now - this.lastPrune >= 3_600_000) {
				this.lastPrune = now;
				this.truncated.clear();
				await this.store.pruneLogs(now - this.settings.logRetention);
			}
			if (now - this.lastRescan >= this.settings.rescanInterval) {
				this.lastRescan = now;
				await this.rescan(now);
			}
		} catch (err) {
			this.logger.error("Sweep failed", err);
		} finally {
			this.sweeping = false;
		}
	}

	async onAckTimeout(row: TaskRow, now: number): Promise<void> {
		if (row.terminalId)
			await this.tellTerminal(row.terminalId, "cancel", { taskId: row.id, attempt: row.attempt, reason: "ack-timeout" });
		if (row.deliveries < this.settings.maxDeliveries) {
			if (await this.returnToQueue(row, now)) await this.route({ ...row, status: "PENDING" });
			return;
		}
		const error = `not acknowledged within ${seconds(row.ackTimeoutMs)} after ${row.deliveries} deliveries`;
		await this.retryOrFinish(row, "TIMEOUT", { error }, now);
		if (row.terminalId) await this.requestDrain(row.terminalId);
	}

	async onRunTimeout(row: TaskRow, now: number): Promise<void> {
		if (row.terminalId)
			await this.tellTerminal(row.terminalId, "cancel", { taskId: row.id, attempt: row.attempt, reason: "timeout" });
		await this.retryOrFinish(
			row,
			"TIMEOUT",
			{ error: `did not finish within its timeout of ${seconds(row.timeoutMs)}` },
			now
		);
		if (row.terminalId) await this.requestDrain(row.terminalId);
	}

	/**
	 * In case a drain was missed: online terminals with their own due tasks drain again, and
	 * due selector tasks are routed again (a bounded batch, each to one chosen terminal).
	 */
	async rescan(now: number): Promise<void> {
		const online = this.presenceList();
		if (online.length === 0) return;
		const waiting = new Set(await this.store.terminalsWithPending(now));
		for (const presence of online) {
			if (!this.owns(presence.terminalId)) continue;
			// Its own queue only: this drain may run well after `waiting` was read, and a selector task
			// submitted meanwhile is not its to take — those are routed below, by their strategy.
			if (!waiting.has(presence.terminalId)) continue;
			// The database says its queue is not empty: what this replica believed is read again, so that
			// a stale hint (left by a moment when replicas disagreed on owners) cannot hold the queue.
			this.emptyQueues.delete(presence.terminalId);
			this.held.delete(presence.terminalId);
			await this.locks.run(presence.terminalId, () => this.drainOnce(presence.terminalId, presence, true));
		}
		// Only tasks left waiting a whole interval: a fresher one is being routed right now by whoever
		// queued it, and routing it twice would let the rescan pick over its strategy (round_robin turns).
		for (const row of await this.store.pendingUnassigned(now, SELECTOR_SCAN))
			if (Number(row.updatedAt) <= now - this.settings.rescanInterval && this.owns(row.id)) await this.route(row);
	}

	// ---------------------------------------------------------------- helpers

	async mustGet(taskId: string): Promise<TaskRow> {
		const row = await this.store.get(taskId);
		if (!row) throw Errors.taskNotFound(taskId);
		return row;
	}

	async listTasks(params: ListParams) {
		const where: Record<string | symbol, unknown> = {};
		if (params.status) where.status = { [Op.in]: params.status.split(",") };
		if (params.terminalId) where[Op.or] = [{ terminalId: params.terminalId }, { target: params.terminalId }];
		if (params.type) where.type = params.type;
		if (params.groupId) where.groupId = params.groupId;
		const page = params.page ?? 1;
		const pageSize = params.pageSize ?? 20;
		const sort = params.sort ?? "-createdAt";
		const column = sort.replace(/^-/, "");
		const direction = sort.startsWith("-") ? "DESC" : "ASC";
		const { rows, total } = await this.store.page(where as WhereOptions<TaskRow>, (page - 1) * pageSize, pageSize, [
			[column, direction],
			["id", direction]
		]);
		return { rows: rows.map(toView), total, page, pageSize, totalPages: Math.ceil(total / pageSize) };
	}

	/**
	 * Announces a durable change to whoever follows (gateways, cache, scheduler). Events are sent
	 * together — at the end of the turn when quiet, at most every few milliseconds when busy: each
	 * `task.statuses` goes to every node that listens, and one per change cost more than the change.
	 */
	announce(row: TaskRow, extra?: Partial<TaskStatusEvent>): void {
		this.events.push(toStatusEvent(row, extra));
		if (this.events.length >= EVENTS_BATCH) return this.sendEvents();
		// Quiet: at the end of this turn. Busy (sent less than EVENTS_DELAY_MS ago): a little later.
		const wait = this.lastEventsAt + EVENTS_DELAY_MS - performance.now();
		this.eventTimer ??= wait <= 0 ? setImmediate(() => this.sendEvents()) : setTimeout(() => this.sendEvents(), wait);
	}

	private sendEvents(): void {
		if (this.eventTimer) {
			clearTimeout(this.eventTimer as NodeJS.Timeout);
			clearImmediate(this.eventTimer as NodeJS.Immediate);
		}
		this.eventTimer = null;
		if (this.events.length === 0) return;
		this.lastEventsAt = performance.now();
		const event: TaskStatusesEvent = { events: this.events };
		this.events = [];
		void this.broker.broadcast("task.statuses", event).catch(() => undefined);
	}

	private scheduleFlush(): void {
		if (this.flushScheduled) return;
		this.flushScheduled = true;
		setImmediate(() => this.flush());
	}

	/** Sends this turn's pushes, one `gateway.pushMany` per gateway node. */
	private flush(): void {
		this.flushScheduled = false;
		const pushes = this.pushes;
		this.pushes = new Map();
		for (const [nodeID, batch] of pushes) {
			this.broker.call<boolean[], { pushes: GatewayPush[] }>("gateway.pushMany", { pushes: batch.items }, { nodeID }).then(
				sent => batch.done.forEach((done, i) => done(sent[i] === true)),
				err => {
					this.logger.debug(`Pushes to ${nodeID} failed: ${(err as Error).message}`);
					for (const done of batch.done) done(false);
				}
			);
		}
	}

	/** Best effort: a message to a terminal wherever it is connected. */
	async tellTerminal(
		terminalId: string,
		event: "cancel",
		data: { taskId: string; attempt?: number; reason?: string }
	): Promise<void> {
		const presence = this.presence.get(terminalId);
		if (presence) await this.pushTo(presence, { event, data });
	}

	/** A terminal was updated (disabled, relabelled, its key rotated): read its record again when needed. */
	forgetTerminal(terminalId: string): void {
		this.terminals.invalidate(terminalId);
		this.emptyQueues.delete(terminalId);
	}

	presenceOf(terminalId: string): Presence | null {
		return this.presence.get(terminalId);
	}

	presenceList(): Presence[] {
		return this.presence.list();
	}
}
