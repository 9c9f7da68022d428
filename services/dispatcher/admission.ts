/**
 * Admission: submitted bodies become tasks. A body is checked, its idempotency key honoured, a
 * fan-out expanded to one task per terminal, and the rows written; a task for an owned, idle,
 * connected terminal is written straight as DELIVERED and pushed, the others are queued and routed.
 */
import { fields } from "../../lib/log-format.ts";
import { call } from "../../lib/actions.ts";
import type { Presence, Principal, Selector, SocketErrorPayload, SubmitResult, TerminalRecord } from "../../lib/contracts.ts";
import { Errors, toErrorPayload } from "../../lib/errors.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { labelsMatch } from "../../lib/labels.ts";
import type { TaskRow } from "../../models/task.model.ts";
import type { DispatcherCore } from "./core.ts";
import type { SubmitParams } from "./params.ts";
import { takes } from "./delivery.ts";
import type { Routing } from "./routing.ts";
import { checkBody, rowFor, sameBody } from "./rows.ts";
import { DuplicateKeyError } from "./sql.ts";
import { KeyFlights } from "./key-flights.ts";

/** What a task's first announcement carries. */
const SUBMITTED = { submitted: true } as const;

/** Tasks admitted together at most: the store writes up to this many rows in one statement. */
const ADMIT_CHUNK = 500;

export type Answer = SubmitResult | { error: SocketErrorPayload };
type Lookups = Map<string, Promise<TerminalRecord | null>>;

function isFanOut(body: SubmitParams): boolean {
	const strategy = body.selector?.strategy;
	return strategy === "broadcast" || strategy === "sharding";
}

export class Admission {
	private readonly core: DispatcherCore;
	private readonly routing: Routing;
	private readonly flights = new KeyFlights();

	constructor(core: DispatcherCore, routing: Routing) {
		this.core = core;
		this.routing = routing;
	}

	/**
	 * One body: its task, or its fan-out's tasks. A call about one terminal reaches the replica that
	 * owns it by the TerminalOwner strategy (lib/owner-strategy.ts), so it is taken in here; while
	 * replicas disagree on owners for a moment, any replica may take it in.
	 */
	async submit(body: SubmitParams, principal?: Principal): Promise<SubmitResult> {
		const now = Date.now();
		const template = await this.template(body, principal, now);
		if (body.idempotencyKey) {
			const earlier = await this.earlierSubmit(body.idempotencyKey, template, now);
			if (earlier) return earlier;
		}
		const rows = isFanOut(body) ? await this.fanOut(body, template, now) : [{ ...template, id: uuidv7(now) }];
		for (let tries = 1; ; tries++) {
			try {
				await this.admit(rows, now);
				break;
			} catch (err) {
				// Two submits with one key raced; the loser answers with the winner's task. When the
				// winner's insert failed after all, the key is free: this one tries again.
				if (err instanceof DuplicateKeyError && body.idempotencyKey) {
					const earlier = await this.earlierSubmit(body.idempotencyKey, template, now);
					if (earlier) return earlier;
					if (tries < 3) continue;
				}
				throw err;
			}
		}
		const groupId = rows[0].groupId;
		// A fan-out always names its tasks, even when one terminal matched (as a repeated submit does).
		return groupId === null ? { taskId: rows[0].id } : { taskId: rows[0].id, taskIds: rows.map(r => r.id), groupId };
	}

	/**
	 * Many bodies at once (the scheduler's fires of one tick, `POST /api/tasks/batch`): one INSERT
	 * per chunk, then each task is routed. Each answer is the task's SubmitResult or its error;
	 * fan-outs go one submit each, and so does a chunk in which an idempotency key is taken.
	 */
	async submitBatch(bodies: SubmitParams[], principal?: Principal, forwarded = false): Promise<Answer[]> {
		const { core } = this;
		const results: (Answer | undefined)[] = new Array(bodies.length);
		// Tasks for terminals another replica owns go to it, in one call per replica.
		const here: number[] = [];
		const elsewhere = new Map<string, number[]>();
		for (const [index, body] of bodies.entries()) {
			const owner = body.terminalId && !forwarded ? core.owners.ownerOf(body.terminalId) : core.nodeID;
			if (owner === core.nodeID) here.push(index);
			else elsewhere.set(owner, [...(elsewhere.get(owner) ?? []), index]);
		}
		await Promise.all(
			[...elsewhere].map(async ([nodeID, indexes]) => {
				const answers = await this.forward(
					indexes.map(i => bodies[i]),
					nodeID,
					principal
				);
				if (answers.length === indexes.length) indexes.forEach((index, k) => (results[index] = answers[k]));
				else here.push(...indexes);
			})
		);

		const now = Date.now();
		const rows: { index: number; row: TaskRow }[] = [];
		const single: number[] = [];
		const lookups: Lookups = new Map();
		for (const index of here.sort((a, b) => a - b)) {
			const body = bodies[index];
			if (isFanOut(body)) {
				single.push(index);
				continue;
			}
			try {
				rows.push({ index, row: { ...(await this.template(body, principal, now, lookups)), id: uuidv7(now) } });
			} catch (err) {
				results[index] = { error: toErrorPayload(err) };
			}
		}
		// One INSERT statement per chunk, so that a taken key fails its chunk only, and whole: its
		// bodies then go one by one, each answered with its earlier task (or its conflict).
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
					single.push(...chunk.map(r => r.index));
				}
			})
		);
		for (const index of single) {
			try {
				results[index] = await this.submit(bodies[index], principal);
			} catch (err) {
				results[index] = { error: toErrorPayload(err) };
			}
		}
		return results as Answer[];
	}

	/** The checked body as a PENDING row (no id): its terminal exists, or its selector can be served. */
	private async template(
		body: SubmitParams,
		principal: Principal | undefined,
		now: number,
		lookups?: Lookups
	): Promise<TaskRow> {
		const checked = checkBody(body, this.core.settings, this.core.keyring);
		if (body.terminalId) {
			let resolving = lookups?.get(body.terminalId);
			if (!resolving) {
				resolving = this.core.terminals.get(body.terminalId);
				lookups?.set(body.terminalId, resolving);
			}
			if (!(await resolving)) throw Errors.terminalNotFound(body.terminalId);
		} else if (!isFanOut(body) && !body.waitForTerminal) await this.requireMatch(body.selector?.labels, body.type);
		return rowFor(body, checked, this.core.settings, principal, now);
	}

	/**
	 * A selector must match a registered, enabled terminal, whatever its strategy: one online that
	 * matches is enough, else the registry is asked. `waitForTerminal` queues the task instead.
	 */
	private async requireMatch(labels: Selector["labels"], type: string): Promise<void> {
		if (this.core.presence.list().some(p => labelsMatch(labels, p.labels) && takes(p, type))) return;
		const registered = await call(this.core.ports, "terminals.matching", {});
		if (!registered.some(t => labelsMatch(labels, t.labels))) throw Errors.noMatchingTerminal(labels ?? {});
	}

	/** Broadcast: every enabled matching terminal. Sharding: the online ones, else all registered. */
	private async fanOut(body: SubmitParams, template: TaskRow, now: number): Promise<TaskRow[]> {
		const strategy = body.selector?.strategy;
		const labels = body.selector?.labels;
		// A draining terminal takes no new work, a fan-out's share included.
		const registered = (await call(this.core.ports, "terminals.matching", {})).filter(
			t => !t.draining && labelsMatch(labels, t.labels)
		);
		let targets = registered.map(t => t.id);
		if (strategy === "sharding") {
			const online = new Set(this.core.presence.list().map(p => p.terminalId));
			const live = targets.filter(id => online.has(id));
			if (live.length > 0) targets = live;
		}
		if (targets.length === 0) throw Errors.noMatchingTerminal(labels ?? {});
		const groupId = uuidv7(now);
		return targets.map((terminalId, index) => ({
			...template,
			id: uuidv7(now),
			target: terminalId,
			groupId,
			idempotencyKey: index === 0 ? template.idempotencyKey : null,
			shardIndex: strategy === "sharding" ? index : null,
			shardTotal: strategy === "sharding" ? targets.length : null
		}));
	}

	/**
	 * The earlier task of an idempotency key still within its window (a key past it is freed).
	 * The same key with a different body is the caller's mistake, not a repeat: IDEMPOTENCY_CONFLICT.
	 */
	private async earlierSubmit(key: string, fresh: TaskRow, now: number): Promise<SubmitResult | null> {
		const { store, settings } = this.core;
		const earlier = await store.byIdempotencyKey(key);
		if (!earlier) return null;
		if (now - Number(earlier.createdAt) >= settings.idempotencyWindow) {
			await store.releaseKey(earlier.id, key);
			return null;
		}
		if (!sameBody(earlier, fresh, this.core.keyring)) throw Errors.idempotencyConflict(key, earlier.id);
		if (earlier.groupId) {
			const group = await store.byGroup(earlier.groupId);
			return { taskId: earlier.id, taskIds: group.map(r => r.id), groupId: earlier.groupId, duplicate: true };
		}
		return { taskId: earlier.id, duplicate: true };
	}

	/**
	 * Submits bodies on the replica `nodeID` (the owner of their terminals); [] when it could not be
	 * reached. A batch names many terminals, so no call strategy can route it whole: it is split here.
	 */
	private async forward(bodies: SubmitParams[], nodeID: string, principal?: Principal): Promise<Answer[]> {
		try {
			return await call(this.core.ports, "dispatcher.submitOwned", { tasks: bodies, principal }, { nodeID });
		} catch (err) {
			// The owner is leaving or gone: take the tasks in here, as any replica may.
			this.core.logger.debug(`Forwarding ${bodies.length} submit(s) to ${nodeID} failed: ${(err as Error).message}`);
			return [];
		}
	}

	/**
	 * Writes new tasks and sets them going. A task for an owned, connected, idle terminal with a
	 * free slot is written straight as DELIVERED and pushed: one write and no queue on its path.
	 * The others are written PENDING and routed. Throws what the insert throws (DuplicateKeyError).
	 */
	private async admit(rows: TaskRow[], now: number): Promise<void> {
		const keys = rows.flatMap(row => (row.idempotencyKey ? [row.idempotencyKey] : []));
		const outcome = await this.flights.run(keys, () => this.insert(rows, now));
		if (outcome === "busy") throw new DuplicateKeyError("An insert of the same idempotency key was under way");
	}

	private async insert(rows: TaskRow[], now: number): Promise<void> {
		const { core } = this;
		const direct: { row: TaskRow; presence: Presence }[] = [];
		const written = rows.map(row => {
			const presence = this.claimDirect(row);
			if (!presence) {
				core.book.queuedFor(row);
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
			await core.store.insert(written);
		} catch (err) {
			for (const { row } of direct) core.book.release(row.terminalId!);
			throw err;
		}
		for (const row of written) {
			core.rows.set(row.id, row);
			core.metrics.admitted(row);
		}
		// A task written straight as DELIVERED was never PENDING for anyone to see: one event.
		for (const row of written) core.outbox.announce(row, SUBMITTED);
		for (const { row, presence } of direct) this.routing.delivery.startPush(row, presence);
		// A terminal's queue drains as a whole: one drain per named terminal, not one per task.
		const targets = new Set<string>();
		const routed: TaskRow[] = [];
		for (const row of written) {
			if (row.status !== "PENDING") continue;
			if (row.target && targets.has(row.target)) continue;
			if (row.target) targets.add(row.target);
			routed.push(row);
		}
		await Promise.all(
			routed.map(row =>
				this.routing.route(row).catch(err => core.logger.error(fields({ taskId: row.id }), "Routing failed", row.id, err))
			)
		);
	}

	/** A slot for a new task on its terminal, taken now, if it may skip the queue; its session then. */
	private claimDirect(row: TaskRow): Presence | null {
		const { core } = this;
		const terminalId = row.target;
		if (!terminalId || row.notBefore !== null || !core.owns(terminalId)) return null;
		const presence = core.presence.get(terminalId);
		return presence && core.book.claimDirect(terminalId, presence.concurrency) ? presence : null;
	}
}
