/**
 * The agent: takes tasks from Tern, runs each with the runner its `type` names, and reports
 * them — never more at once than the concurrency it advertised, never a (taskId, attempt) twice,
 * never a result lost.
 *
 * A task's way through the agent, each step written to the ledger before it is acted on:
 *
 *   task ──▶ received ──slot──▶ running (ack sent) ──▶ done (result held) ──Tern took it──▶ sent
 *                                   │                       └──Tern refused it──▶ refused
 *                                   └── cancel from Tern / ack refused ──▶ dropped (no result)
 *
 * - A (taskId, attempt) already in the ledger is not run again: it is acked, and a held result
 *   is sent (again).
 * - A later attempt of a task still running here (Tern did not get the ack in time and pushed
 *   it again) takes over the run rather than starting a second one; a later attempt of a task
 *   whose successful result Tern never took is answered with that result.
 * - Results are held on disk until Tern takes them, and sent again after every reconnect and
 *   after a restart of the agent.
 * - The agent kills a run at its timeout (the task's `timeout`, or the payload's when shorter):
 *   SIGTERM to its process group, SIGKILL after the grace period.
 *
 * This class decides what happens to each task that comes; one run is run.ts, the results held
 * until Tern takes them are outbox.ts, and what an earlier agent left is recovery.ts.
 */
import { join } from "node:path";
import type { TaskPush } from "../../lib/contracts.ts";
import { processStart, signalGroup, type Runner, type StopReason } from "../runners/base.ts";
import type { AgentConfig } from "./config.ts";
import { Ledger, lockDataDir, receivedEntry, type LedgerEntry } from "./ledger.ts";
import type { Logger } from "./log.ts";
import { ResultOutbox } from "./outbox.ts";
import { recoverLeftOver } from "./recovery.ts";
import { TernError } from "./rest.ts";
import { trustCa } from "./tls.ts";
import { newRun, perform, toResult, type Run } from "./run.ts";
import { ScriptStore } from "./scripts.ts";
import { TernTerminal, type CancelMessage } from "./terminal.ts";

export interface AgentOptions {
	config: AgentConfig;
	runners: Map<string, Runner>;
	logger: Logger;
}

export interface AgentStats {
	received: number;
	started: number;
	duplicates: number;
	adopted: number;
	resultsSent: number;
	maxRunning: number;
}

/** How long a run's remaining output may take to reach Tern before its result goes. */
const LOG_FLUSH_MS = 3000;
/** After Tern refuses an ack as superseded, how long to wait for the later attempt to take the run over. */
const ADOPT_WAIT_MS = 2000;

export class Agent {
	readonly config: AgentConfig;
	readonly terminal: TernTerminal;
	readonly ledger: Ledger;
	readonly scripts: ScriptStore;
	readonly stats: AgentStats = { received: 0, started: 0, duplicates: 0, adopted: 0, resultsSent: 0, maxRunning: 0 };
	private readonly runners: Map<string, Runner>;
	private readonly log: Logger;
	private readonly runs = new Map<string, Run>();
	private readonly queue: TaskPush[] = [];
	private running = 0;
	private draining = false;
	private readonly outbox: ResultOutbox;
	private readonly unlock: () => void;
	private idleWaiters: (() => void)[] = [];

	constructor(options: AgentOptions) {
		this.config = options.config;
		this.runners = options.runners;
		this.log = options.logger;
		// Before any connection: REST and the socket both check Tern's certificate against it.
		if (this.config.ca) trustCa(this.config.ca);
		this.unlock = lockDataDir(this.config.dataDir);
		this.ledger = new Ledger(this.config.dataDir);
		this.terminal = new TernTerminal({
			url: this.config.url,
			socketUrl: this.config.socketUrl,
			token: this.config.token,
			terminalId: this.config.terminalId,
			concurrency: this.config.concurrency,
			capabilities: this.capabilities,
			labels: this.config.labels,
			transport: this.config.transport,
			heartbeatMs: this.config.heartbeatMs,
			reconnectInitialMs: this.config.reconnectInitialMs,
			reconnectMaxMs: this.config.reconnectMaxMs,
			fallbackAfter: this.config.fallbackAfter,
			pullIntervalMs: this.config.pullIntervalMs,
			connectTimeoutMs: this.config.connectTimeoutMs,
			logger: this.log,
			freeSlots: () => (this.draining ? 0 : this.config.concurrency - this.running - this.queue.length)
		});
		this.scripts = new ScriptStore(join(this.config.dataDir, "scripts"), this.terminal.rest);
		this.outbox = new ResultOutbox({
			ledger: this.ledger,
			send: result => this.terminal.result(result),
			logger: this.log,
			maxRetryMs: this.config.reconnectMaxMs,
			holding: () => this.draining,
			sent: () => this.stats.resultsSent++
		});
		this.terminal.on("task", (task, via) => this.onTask(task, via));
		this.terminal.on("cancel", message => this.onCancel(message));
		this.terminal.on("ready", () => this.onReady());
	}

	/** The runner names this agent advertises. */
	get capabilities(): string[] {
		return [...this.runners.keys()];
	}

	get runningCount(): number {
		return this.running;
	}

	start(): void {
		recoverLeftOver(this.ledger, this.config.killGraceMs, this.log);
		this.log.info(
			`Agent for terminal '${this.config.terminalId}': runners ${this.capabilities.join(", ") || "(none)"}, ` +
				`concurrency ${this.config.concurrency}, data in ${this.config.dataDir}`
		);
		this.terminal.start();
	}

	/**
	 * Graceful shutdown: takes no more work (the socket closes, so Tern returns what it pushed and
	 * was not acked), lets running tasks finish for up to the drain timeout, then kills the rest
	 * and reports them FAILED; sends every held result it can, and keeps the others on disk.
	 */
	async shutdown(): Promise<void> {
		if (this.draining) return;
		this.draining = true;
		this.log.info(`Shutting down: ${this.running} task(s) running, taking no more`);
		this.terminal.drain();
		for (const task of this.queue.splice(0)) {
			// Never started and never acked: Tern gives it to another terminal (or to this one, later).
			const entry = this.ledger.get(task.taskId, task.attempt);
			if (entry) this.ledger.put({ ...entry, state: "dropped", note: "handed back at shutdown" });
		}
		if (this.running > 0) {
			const idle = this.whenIdle();
			const timer = setTimeout(() => {
				for (const run of this.runs.values())
					run.controller.abort({
						kind: "shutdown",
						message: `The agent shut down before the task finished (after waiting ${this.config.drainTimeoutMs / 1000} s): it was killed`
					} satisfies StopReason);
			}, this.config.drainTimeoutMs);
			await idle;
			clearTimeout(timer);
		}
		await this.outbox.flush();
		const held = this.ledger.outbox().length;
		if (held > 0) this.log.warn(`${held} result(s) could not be sent: kept in ${this.ledger.path}, sent at the next start`);
		this.outbox.close();
		this.terminal.stop();
		this.ledger.close();
		this.unlock();
		this.log.info("Agent stopped");
	}

	/**
	 * Stopping at once (a second signal): every running task's process group is killed now. Their
	 * ledger entries stay `running`, so the next start reports them FAILED.
	 */
	killAll(): void {
		for (const run of this.runs.values()) if (run.pgid) signalGroup(run.pgid, "SIGKILL");
	}

	private whenIdle(): Promise<void> {
		if (this.running === 0) return Promise.resolve();
		return new Promise(resolve => this.idleWaiters.push(resolve));
	}

	// ---------------------------------------------------------------- tasks in

	private onTask(task: TaskPush, via: "socket" | "pull"): void {
		if (typeof task?.taskId !== "string" || !Number.isInteger(task.attempt)) {
			this.log.warn(`Ignored a malformed task: ${JSON.stringify(task).slice(0, 200)}`);
			return;
		}
		this.stats.received++;
		const name = `${task.taskId} (attempt ${task.attempt}, ${task.type})`;
		if (this.draining) {
			this.log.info(`Task ${name} came while shutting down: not taken`);
			return;
		}
		const seen = this.ledger.get(task.taskId, task.attempt);
		if (seen) return this.onDuplicate(task, seen);

		const run = this.runs.get(task.taskId);
		if (run) {
			if (task.attempt < run.attempt) return;
			// Tern pushed the task again (it did not get our ack in time): the run goes on as the new attempt.
			this.log.info(`Task ${name}: a later attempt of a task running here; it takes the run over (not run twice)`);
			this.stats.adopted++;
			const old = this.ledger.get(task.taskId, run.attempt);
			if (old) this.ledger.put({ ...old, state: "dropped", note: `taken over by attempt ${task.attempt}` });
			this.ledger.put({ ...receivedEntry(task), state: "running", pgid: old?.pgid, procStart: old?.procStart });
			run.attempt = task.attempt;
			run.task = task;
			if (run.stopTimer) clearTimeout(run.stopTimer);
			run.stopTimer = null;
			void this.ack(run);
			return;
		}
		const queued = this.queue.findIndex(t => t.taskId === task.taskId);
		if (queued >= 0) {
			const old = this.ledger.get(task.taskId, this.queue[queued].attempt);
			if (old) this.ledger.put({ ...old, state: "dropped", note: `superseded by attempt ${task.attempt}` });
			this.queue.splice(queued, 1);
		}

		const previous = this.ledger.latest(task.taskId);
		if (
			previous &&
			previous.attempt < task.attempt &&
			(previous.state === "done" || previous.state === "refused") &&
			previous.result?.status === "success"
		) {
			// It ran here to success, and Tern never took that result: answer the new attempt with it.
			this.log.info(
				`Task ${name}: already run here with success (attempt ${previous.attempt}); answered with that result, not run again`
			);
			this.stats.adopted++;
			this.ledger.put({ ...previous, state: "dropped", note: `answered as attempt ${task.attempt}` });
			this.ledger.put({ ...receivedEntry(task), state: "done", result: { ...previous.result, attempt: task.attempt } });
			// The ack goes first on the same channel, so the result finds the task acknowledged.
			void this.terminal.ack({ taskId: task.taskId, attempt: task.attempt }).catch(() => undefined);
			this.outbox.kick();
			return;
		}

		this.log.debug(`Task ${name} received over ${via}`);
		this.ledger.put({ ...receivedEntry(task), state: "received" });
		this.queue.push(task);
		this.queue.sort((a, b) => b.priority - a.priority);
		this.pump();
	}

	/** The same (taskId, attempt) again: acked, never run again; a held result goes again. */
	private onDuplicate(task: TaskPush, entry: LedgerEntry): void {
		this.stats.duplicates++;
		this.log.info(`Task ${task.taskId} (attempt ${task.attempt}) was delivered again: acked, not run again (${entry.state})`);
		void this.terminal.ack({ taskId: task.taskId, attempt: task.attempt }).catch(err => {
			this.log.debug(`Ack of the redelivered ${task.taskId}#${task.attempt}: ${(err as Error).message}`);
		});
		if (entry.state === "done") this.outbox.kick();
	}

	private onCancel(message: CancelMessage): void {
		const run = this.runs.get(message?.taskId);
		const reason = message?.reason ?? "cancelled";
		if (!run) {
			const index = this.queue.findIndex(t => t.taskId === message?.taskId);
			if (index >= 0) {
				const [task] = this.queue.splice(index, 1);
				const entry = this.ledger.get(task.taskId, task.attempt);
				if (entry)
					this.ledger.put({ ...entry, state: "dropped", note: `cancelled by Tern (${reason}) before it started` });
			}
			return;
		}
		if (message.attempt !== undefined && message.attempt < run.attempt) return;
		const stop = () => {
			run.stopTimer = null;
			this.log.info(`Task ${run.taskId} (attempt ${run.attempt}) cancelled by Tern (${reason}): stopping it`);
			run.dropped = `cancelled by Tern (${reason})`;
			run.controller.abort({ kind: "cancel", message: `Cancelled by Tern (${reason})` } satisfies StopReason);
		};
		if (reason === "ack-timeout") {
			// Tern did not get the ack in time and hands the task out again: if the new attempt comes
			// here, it takes this run over (see onTask) rather than running the task a second time.
			this.log.info(
				`Task ${run.taskId} (attempt ${run.attempt}): Tern missed the ack; waiting briefly for its next attempt`
			);
			const attempt = run.attempt;
			run.stopTimer ??= setTimeout(() => {
				if (run.attempt === attempt && this.runs.get(run.taskId) === run && !run.dropped) stop();
			}, ADOPT_WAIT_MS);
			return;
		}
		if (run.stopTimer) clearTimeout(run.stopTimer);
		stop();
	}

	// ---------------------------------------------------------------- running

	/** Starts queued tasks while slots are free: never more at once than the advertised concurrency. */
	private pump(): void {
		while (!this.draining && this.running < this.config.concurrency && this.queue.length > 0) {
			const task = this.queue.shift()!;
			this.running++;
			this.stats.maxRunning = Math.max(this.stats.maxRunning, this.running);
			void this.execute(task)
				.catch(err => {
					this.log.error(`Task ${task.taskId} (attempt ${task.attempt}): ${(err as Error)?.stack ?? String(err)}`);
					if (this.runs.get(task.taskId)?.task === task) this.runs.delete(task.taskId);
				})
				.finally(() => {
					this.running--;
					if (this.running === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
					this.pump();
					this.terminal.wake();
				});
		}
	}

	private async execute(task: TaskPush): Promise<void> {
		this.stats.started++;
		const run = newRun(task, this.config.logLimit, (run, item) =>
			this.terminal.progress({ taskId: run.taskId, attempt: run.attempt, ...(item as { log?: string }) })
		);
		this.runs.set(task.taskId, run);
		const entry = this.ledger.put({
			...(this.ledger.get(task.taskId, task.attempt) ?? receivedEntry(task)),
			state: "running"
		});
		void this.ack(run);

		const outcome = await perform(run, this.runners.get(task.type), {
			config: this.config,
			logger: this.log,
			scripts: this.scripts,
			capabilities: this.capabilities,
			started: pgid => {
				const current = this.ledger.get(run.taskId, run.attempt) ?? entry;
				this.ledger.put({ ...current, state: "running", pgid, procStart: processStart(pgid) });
			}
		});
		await run.logs.close(run.dropped ? 0 : LOG_FLUSH_MS);
		this.runs.delete(task.taskId);
		const current = this.ledger.get(run.taskId, run.attempt) ?? { ...entry, attempt: run.attempt };
		if (run.dropped) {
			this.ledger.put({ ...current, state: "dropped", note: run.dropped });
			return;
		}
		const result = toResult(run, outcome);
		this.log.info(
			`Task ${run.taskId} (attempt ${run.attempt}, ${run.type}) ${outcome.status}${outcome.error ? `: ${outcome.error}` : ""} in ${Date.now() - run.startedAt} ms`
		);
		this.ledger.put({ ...current, state: "done", result });
		this.outbox.kick();
	}

	/** Acks the run's current attempt. A refusal that stands ends the run without a result. */
	private async ack(run: Run): Promise<void> {
		const attempt = run.attempt;
		try {
			await this.terminal.ack({ taskId: run.taskId, attempt });
			run.acked = Math.max(run.acked, attempt);
		} catch (err) {
			if (!(err instanceof TernError) || !err.definitive) {
				this.log.debug(
					`Ack of ${run.taskId}#${attempt} not confirmed (${(err as Error).message}): sent again once connected`
				);
				return;
			}
			if (run.attempt !== attempt || this.runs.get(run.taskId) !== run) return;
			const stop = () => {
				if (run.attempt !== attempt || this.runs.get(run.taskId) !== run || run.dropped) return;
				this.log.warn(`Task ${run.taskId} (attempt ${attempt}): Tern refused the ack (${err.message}): stopping it`);
				run.dropped = `ack refused: ${err.type}`;
				run.controller.abort({ kind: "refused", message: `Tern refused the ack: ${err.message}` } satisfies StopReason);
			};
			// Superseded: Tern probably pushed it again as a later attempt, which takes the run over when it comes.
			if (err.type === "STALE_ATTEMPT") setTimeout(stop, ADOPT_WAIT_MS).unref();
			else stop();
		}
	}

	/** A channel is up: acks Tern may not have got go again, then held results. */
	private onReady(): void {
		for (const run of this.runs.values()) if (run.acked < run.attempt) void this.ack(run);
		this.outbox.kick();
	}

	/** Sends held results now (see ResultOutbox). */
	flushOutbox(): Promise<void> {
		return this.outbox.flush();
	}
}
