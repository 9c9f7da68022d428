/**
 * The agent's memory on disk: one entry per (taskId, attempt) it was given, in an append-only
 * JSON-lines file, each line written and fsync'ed before the agent acts on it.
 *
 * - Dedup: a redelivered (taskId, attempt) is found here and is not run again.
 * - Outbox: a result is written here (state `done`) before it is sent, and stays until Tern
 *   accepts or refuses it; after a crash or a restart the agent sends what is left.
 * - Crash recovery: a `running` entry names its process group, so the next agent can end what
 *   a killed agent left running.
 *
 * The last line of a key wins. The file is compacted at start-up and whenever it has grown to
 * several times its live entries; final entries older than the retention are forgotten.
 */
import {
	closeSync,
	existsSync,
	fdatasyncSync,
	fsyncSync,
	mkdirSync,
	openSync,
	readFileSync,
	renameSync,
	writeSync
} from "node:fs";
import { join } from "node:path";
import type { ResultParams, TaskPush } from "../../lib/contracts.ts";

export type EntryState =
	/** Given to the agent, waiting for a free slot. */
	| "received"
	/** Running; `pgid` names its process group when it started one. */
	| "running"
	/** Finished: `result` is held until Tern takes it (the outbox). */
	| "done"
	/** Tern accepted the result. */
	| "sent"
	/** Tern refused the result for good (superseded, already final); kept for a later attempt to reuse. */
	| "refused"
	/** Never to be answered: cancelled by Tern, taken over by a later attempt, refused at ack. */
	| "dropped";

export interface LedgerEntry {
	taskId: string;
	attempt: number;
	type: string;
	state: EntryState;
	receivedAt: number;
	/** Last change. */
	at: number;
	result?: ResultParams;
	pgid?: number;
	/** The process's start time (Linux: /proc/<pid>/stat field 22), so a reused pid is never killed. */
	procStart?: string;
	note?: string;
}

export interface LedgerOptions {
	/** Final entries older than this are forgotten at compaction. @defaultValue 7 days */
	retentionMs?: number;
	/** At most this many final entries are kept (the newest). @defaultValue 50,000 */
	maxEntries?: number;
}

const FINAL: ReadonlySet<EntryState> = new Set(["sent", "refused", "dropped"]);

/** The entry of a task just given to the agent. */
export function receivedEntry(task: TaskPush): LedgerEntry {
	const now = Date.now();
	return { taskId: task.taskId, attempt: task.attempt, type: task.type, state: "received", receivedAt: now, at: now };
}

export function entryKey(taskId: string, attempt: number): string {
	return `${taskId}#${attempt}`;
}

export class Ledger {
	readonly path: string;
	private readonly entries = new Map<string, LedgerEntry>();
	private readonly byTask = new Map<string, number>();
	private fd: number;
	private lines = 0;
	private readonly retentionMs: number;
	private readonly maxEntries: number;
	/** Entries that were not final when the ledger was opened: work of an agent that is gone. */
	readonly leftOver: LedgerEntry[];

	constructor(dir: string, options: LedgerOptions = {}) {
		mkdirSync(dir, { recursive: true, mode: 0o700 });
		this.path = join(dir, "ledger.jsonl");
		this.retentionMs = options.retentionMs ?? 7 * 86_400_000;
		this.maxEntries = options.maxEntries ?? 50_000;
		if (existsSync(this.path)) {
			const text = readFileSync(this.path, "utf8");
			for (const line of text.split("\n")) {
				if (!line.trim()) continue;
				try {
					this.remember(JSON.parse(line) as LedgerEntry);
				} catch {
					// A line cut short by a crash mid-write: the entry before it stands.
				}
			}
		}
		this.leftOver = [...this.entries.values()].filter(e => !FINAL.has(e.state));
		this.fd = -1;
		this.compact();
	}

	private remember(entry: LedgerEntry): void {
		this.entries.set(entryKey(entry.taskId, entry.attempt), entry);
		if ((this.byTask.get(entry.taskId) ?? 0) < entry.attempt) this.byTask.set(entry.taskId, entry.attempt);
	}

	get(taskId: string, attempt: number): LedgerEntry | undefined {
		return this.entries.get(entryKey(taskId, attempt));
	}

	/** The entry of the task's highest attempt seen here. */
	latest(taskId: string): LedgerEntry | undefined {
		const attempt = this.byTask.get(taskId);
		return attempt === undefined ? undefined : this.get(taskId, attempt);
	}

	/** Results not yet taken by Tern, oldest first. */
	outbox(): LedgerEntry[] {
		return [...this.entries.values()].filter(e => e.state === "done").sort((a, b) => a.at - b.at);
	}

	/** Writes the entry's new state durably (append + fdatasync) and returns it. */
	put(entry: LedgerEntry): LedgerEntry {
		entry.at = Date.now();
		// Final entries need not carry their output forever; a refused one keeps it for a later attempt.
		const stored: LedgerEntry = entry.state === "sent" || entry.state === "dropped" ? { ...entry, result: undefined } : entry;
		this.remember(stored);
		writeSync(this.fd, JSON.stringify(stored) + "\n");
		fdatasyncSync(this.fd);
		this.lines++;
		if (this.lines > 1000 && this.lines > 4 * this.entries.size) this.compact();
		return stored;
	}

	/** Rewrites the file with the live entries only: write a copy, fsync it, rename it over. */
	compact(now = Date.now()): void {
		const cutoff = now - this.retentionMs;
		const final = [...this.entries.values()].filter(e => FINAL.has(e.state)).sort((a, b) => b.at - a.at);
		for (const [index, entry] of final.entries())
			if (entry.at < cutoff || index >= this.maxEntries) this.entries.delete(entryKey(entry.taskId, entry.attempt));
		this.byTask.clear();
		for (const entry of this.entries.values())
			if ((this.byTask.get(entry.taskId) ?? 0) < entry.attempt) this.byTask.set(entry.taskId, entry.attempt);
		const tmp = `${this.path}.tmp`;
		const fd = openSync(tmp, "w", 0o600);
		const live = [...this.entries.values()].sort((a, b) => a.at - b.at);
		const chunk: string[] = [];
		for (const entry of live) {
			chunk.push(JSON.stringify(entry));
			if (chunk.length >= 500) writeSync(fd, chunk.splice(0).join("\n") + "\n");
		}
		if (chunk.length > 0) writeSync(fd, chunk.join("\n") + "\n");
		fsyncSync(fd);
		closeSync(fd);
		renameSync(tmp, this.path);
		syncDir(join(this.path, ".."));
		if (this.fd >= 0) closeSync(this.fd);
		this.fd = openSync(this.path, "a", 0o600);
		this.lines = live.length;
	}

	close(): void {
		if (this.fd >= 0) closeSync(this.fd);
		this.fd = -1;
	}
}

/** Makes a rename in `dir` durable (where the platform lets a directory be fsync'ed). */
export function syncDir(dir: string): void {
	try {
		const fd = openSync(dir, "r");
		try {
			fsyncSync(fd);
		} finally {
			closeSync(fd);
		}
	} catch {
		// Not supported here (Windows): the rename is as durable as the platform makes it.
	}
}

/**
 * One agent per data dir: a lock file with the agent's pid. A lock left by a process that is
 * gone is taken over; a live one stops the second agent with a message saying which pid holds it.
 */
export function lockDataDir(dir: string): () => void {
	mkdirSync(dir, { recursive: true, mode: 0o700 });
	const path = join(dir, "agent.lock");
	for (let tries = 0; tries < 2; tries++) {
		try {
			const fd = openSync(path, "wx", 0o600);
			writeSync(fd, String(process.pid));
			closeSync(fd);
			return () => {
				try {
					if (readFileSync(path, "utf8").trim() === String(process.pid)) renameSync(path, `${path}.released`);
				} catch {
					/* gone already */
				}
			};
		} catch (err) {
			if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
			const pid = Number(readFileSync(path, "utf8").trim());
			if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid))
				throw new Error(`Another agent (pid ${pid}) is using the data dir ${dir}`);
			renameSync(path, `${path}.stale`);
		}
	}
	throw new Error(`Could not lock the data dir ${dir}`);
}

export function isAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (err) {
		return (err as NodeJS.ErrnoException).code === "EPERM";
	}
}
