/**
 * The dispatcher's shared parts, built once per replica and handed to each module: the ports to
 * the broker, the task repository, the slot book, ownership, presence, the outbox and the locks.
 * `write` is the one way a lifecycle change reaches the database: the compare-and-set, then the
 * book, the row cache and the announcement, always together.
 */
import type { Logger } from "moleculer";
import { LRUCache } from "lru-cache";
import { Ownership } from "../../lib/owners.ts";
import { Errors } from "../../lib/errors.ts";
import { KeyedLock } from "../../lib/keyed-lock.ts";
import type { TaskRow } from "../../models/task.model.ts";
import type { DispatcherSettings } from "./settings.ts";
import type { TaskStore } from "./store.ts";
import { SlotBook } from "./book.ts";
import { Outbox, type DispatcherPorts } from "./outbox.ts";
import { PresenceMirror, TerminalRecords } from "./presence.ts";
import type { Change } from "./transitions.ts";
import { AttemptSet } from "./attempt-set.ts";
import type { TaskMetrics } from "../../lib/metrics/tasks.ts";
import type { Keyring } from "../../lib/keyring.ts";

export interface CoreDeps {
	ports: DispatcherPorts;
	logger: Logger;
	settings: DispatcherSettings;
	store: TaskStore;
	/** Tern's task series (lib/metrics/tasks.ts), fed by every write. */
	metrics: TaskMetrics;
	/** Seals task secrets at rest, opens them for the push (lib/task-secrets.ts). */
	keyring: Keyring;
}

export interface WriteOptions {
	/** A slot already taken for the terminal the change hands the task to (see SlotBook.reserve). */
	reserved?: string;
	/** Written without an announcement (a wake-up that changes nothing a follower sees). */
	quiet?: boolean;
}

export class DispatcherCore {
	readonly ports: DispatcherPorts;
	readonly logger: Logger;
	readonly settings: DispatcherSettings;
	readonly store: TaskStore;
	readonly metrics: TaskMetrics;
	readonly keyring: Keyring;
	readonly book = new SlotBook();
	readonly owners: Ownership;
	readonly outbox: Outbox;
	readonly locks = new KeyedLock();
	/** Who is connected where: this process's one copy, fed by the gateways' connect announcements. */
	readonly presence = new PresenceMirror();
	readonly terminals: TerminalRecords;
	/**
	 * The last state this replica wrote or read of recent tasks. A hint only: every change is still
	 * a compare-and-set in the database, and a stale row fails it and is read again.
	 */
	readonly rows = new LRUCache<string, TaskRow>({ max: 100_000 });
	/**
	 * The attempts whose ack or result this replica has in hand and is writing. The terminal has
	 * answered them, so a deadline that passes meanwhile (a database slow to answer holds the write)
	 * is not the terminal's silence: the sweep leaves them to the write (see Deadlines).
	 */
	readonly answering = new AttemptSet();
	/**
	 * Cut off from the cluster (its NATS connection gone): no sweep and no drain here, since no
	 * push would arrive and no ack could come back; the replicas still connected own its terminals.
	 */
	cutOff = false;

	constructor(deps: CoreDeps) {
		this.ports = deps.ports;
		this.logger = deps.logger;
		this.settings = deps.settings;
		this.store = deps.store;
		this.metrics = deps.metrics;
		this.keyring = deps.keyring;
		this.owners = new Ownership(deps.ports.nodeID);
		this.outbox = new Outbox(deps.ports, deps.logger);
		this.terminals = new TerminalRecords(deps.ports);
	}

	get nodeID(): string {
		return this.ports.nodeID;
	}

	owns(key: string): boolean {
		return this.owners.owns(key);
	}

	/** The key a task's deadlines are owned by: its terminal, else its own id. */
	keyOf(row: TaskRow): string {
		return row.terminalId ?? row.target ?? row.id;
	}

	async mustGet(taskId: string): Promise<TaskRow> {
		const row = await this.store.get(taskId);
		if (!row) throw Errors.taskNotFound(taskId);
		return row;
	}

	/** Writes a change if the row is still as it expects; the new row, or null when it was not. */
	async write(row: TaskRow, change: Change, options: WriteOptions = {}): Promise<TaskRow | null> {
		const { reserved } = options;
		if (!(await this.store.transition(row.id, change.expect, change.changes))) {
			if (reserved) this.book.release(reserved);
			this.rows.delete(row.id);
			return null;
		}
		const next: TaskRow = { ...row, ...change.changes };
		this.book.written(row, next, reserved);
		this.rows.set(next.id, next);
		this.metrics.changed(row, next, change);
		if (!options.quiet)
			this.outbox.announce(next, change.retry ? { retry: change.retry.number, error: change.retry.reason } : undefined);
		return next;
	}

	/** Tasks an owned terminal holds, counted in the database the first time. */
	async heldBy(terminalId: string): Promise<number> {
		const known = this.book.heldBy(terminalId);
		if (known !== undefined) return known;
		const counted = (await this.store.inflight([terminalId])).get(terminalId) ?? 0;
		// A change made while counting has already set a count meanwhile; keep that one.
		return this.book.counted(terminalId, counted);
	}
}
