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
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResultParams, TaskPush } from "../../lib/contracts.ts";
import {
	processStart,
	RunnerError,
	signalGroup,
	terminateGroup,
	type RunContext,
	type Runner,
	type StopReason
} from "../runners/base.ts";
import { Backoff } from "./backoff.ts";
import type { AgentConfig } from "./config.ts";
import { Ledger, lockDataDir, type LedgerEntry } from "./ledger.ts";
import type { Logger } from "./log.ts";
import { LogPump } from "./logs.ts";
import { TernError } from "./rest.ts";
import { ScriptStore } from "./scripts.ts";
import { TernTerminal, type CancelMessage } from "./terminal.ts";

/** One task being run here. `attempt` moves up when a later attempt takes the run over. */
interface Run {
	taskId: string;
	attempt: number;
	type: string;
	task: TaskPush;
	controller: AbortController;
	logs: LogPump;
	/** The attempt Tern confirmed the ack of. */
	acked: number;
	/** Set when the run must end without a result (cancelled by Tern, ack refused). */
	dropped: string | null;
	workDir: string | null;
	startedAt: number;
	/** A stop put off while a later attempt may still come to take the run over. */
	stopTimer: NodeJS.Timeout | null;
	/** The process group the run started, if any. */
	pgid: number | null;
}

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
/** How long after the task's own timeout the agent kills a run Tern did not cancel. */
const TIMEOUT_MARGIN_MS = 1000;
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
	private flushing: Promise<void> | null = null;
	private flushAgain = false;
	private flushTimer: NodeJS.Timeout | null = null;
	private readonly outboxBackoff: Backoff;
	private readonly unlock: () => void;
	private idleWaiters: (() => void)[] = [];

	constructor(options: AgentOptions) {
		this.config = options.config;
		this.runners = options.runners;
		this.log = options.logger;
		this.outboxBackoff = new Backoff({ initialMs: 1000, maxMs: Math.max(1000, this.config.reconnectMaxMs), jitter: 0.3 });
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
		this.recover();
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
		await this.flushOutbox();
		const held = this.ledger.outbox().length;
		if (held > 0) this.log.warn(`${held} result(s) could not be sent: kept in ${this.ledger.path}, sent at the next start`);
		if (this.flushTimer) clearTimeout(this.flushTimer);
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

	// ---------------------------------------------------------------- start-up

	/** What an earlier agent left: results to send, runs that died with it. */
	private recover(): void {
		for (const entry of this.ledger.leftOver) {
			if (entry.state === "done") continue; // in the outbox: sent once connected
			if (entry.state === "received") {
				this.ledger.put({
					...entry,
					state: "dropped",
					note: "the agent stopped before it started; Tern hands it out again"
				});
				continue;
			}
			// "running": the agent died under it. Whatever of it still runs is ended; it is not run again.
			if (entry.pgid && entry.procStart && processStart(entry.pgid) === entry.procStart) {
				this.log.warn(
					`Task ${entry.taskId} (attempt ${entry.attempt}) left running by an earlier agent: killing its process group ${entry.pgid}`
				);
				terminateGroup(entry.pgid, this.config.killGraceMs);
			} else if (entry.pgid) signalGroup(entry.pgid, "SIGKILL");
			this.ledger.put({
				...entry,
				state: "done",
				result: {
					taskId: entry.taskId,
					attempt: entry.attempt,
					status: "failed",
					error: "The agent stopped while the task ran; it was not run again"
				}
			});
		}
		const held = this.ledger.outbox().length;
		if (held > 0) this.log.info(`${held} result(s) held from before: sent once connected`);
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
			this.ledger.put({ ...this.newEntry(task), state: "running", pgid: old?.pgid, procStart: old?.procStart });
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
			this.ledger.put({ ...this.newEntry(task), state: "done", result: { ...previous.result, attempt: task.attempt } });
			// The ack goes first on the same channel, so the result finds the task acknowledged.
			void this.terminal.ack({ taskId: task.taskId, attempt: task.attempt }).catch(() => undefined);
			this.kickOutbox();
			return;
		}

		this.log.debug(`Task ${name} received over ${via}`);
		this.ledger.put({ ...this.newEntry(task), state: "received" });
		this.queue.push(task);
		this.queue.sort((a, b) => b.priority - a.priority);
		this.pump();
	}

	private newEntry(task: TaskPush): LedgerEntry {
		const now = Date.now();
		return { taskId: task.taskId, attempt: task.attempt, type: task.type, state: "received", receivedAt: now, at: now };
	}

	/** The same (taskId, attempt) again: acked, never run again; a held result goes again. */
	private onDuplicate(task: TaskPush, entry: LedgerEntry): void {
		this.stats.duplicates++;
		this.log.info(`Task ${task.taskId} (attempt ${task.attempt}) was delivered again: acked, not run again (${entry.state})`);
		void this.terminal.ack({ taskId: task.taskId, attempt: task.attempt }).catch(err => {
			this.log.debug(`Ack of the redelivered ${task.taskId}#${task.attempt}: ${(err as Error).message}`);
		});
		if (entry.state === "done") this.kickOutbox();
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
		const controller = new AbortController();
		const run: Run = {
			taskId: task.taskId,
			attempt: task.attempt,
			type: task.type,
			task,
			controller,
			logs: new LogPump(
				item => this.terminal.progress({ taskId: run.taskId, attempt: run.attempt, ...(item as { log?: string }) }),
				this.config.logLimit
			),
			acked: 0,
			dropped: null,
			workDir: null,
			startedAt: Date.now(),
			stopTimer: null,
			pgid: null
		};
		this.runs.set(task.taskId, run);
		const entry = this.ledger.put({
			...(this.ledger.get(task.taskId, task.attempt) ?? this.newEntry(task)),
			state: "running"
		});
		void this.ack(run);

		const payload = task.payload;
		const timeout = this.timeoutOf(task);
		const deadline = timeout ? run.startedAt + timeout.ms : Infinity;
		const timer = timeout
			? setTimeout(() => {
					this.log.warn(
						`Task ${task.taskId} (attempt ${run.attempt}) timed out after ${timeout.seconds} s: killing it`
					);
					controller.abort({
						kind: "timeout",
						message: `Timed out after ${timeout.seconds} s: the agent killed it (SIGTERM, then SIGKILL after ${this.config.killGraceMs / 1000} s)`
					} satisfies StopReason);
				}, timeout.ms)
			: null;

		let outcome: { status: "success" | "failed"; output?: unknown; error?: string; exitCode?: number | null };
		const runner = this.runners.get(task.type);
		try {
			if (!runner)
				throw new RunnerError(
					`Runner '${task.type}' is not available on this terminal (it has: ${this.capabilities.join(", ") || "none"})`
				);
			const ctx: RunContext = {
				task,
				payload,
				signal: controller.signal,
				deadline,
				config: this.config,
				logger: this.log,
				scripts: this.scripts,
				log: (stream, text) => run.logs.write(stream, text),
				percent: value => run.logs.percent(value),
				started: pgid => {
					run.pgid = pgid;
					const current = this.ledger.get(run.taskId, run.attempt) ?? entry;
					this.ledger.put({ ...current, state: "running", pgid, procStart: processStart(pgid) });
				},
				workDir: () => (run.workDir ??= mkdtempSync(join(tmpdir(), "tern-task-")))
			};
			outcome = await runner.run(ctx);
		} catch (err) {
			outcome = {
				status: "failed",
				error:
					err instanceof RunnerError
						? err.message
						: `The ${task.type} runner failed: ${(err as Error)?.message ?? String(err)}`,
				...(err instanceof RunnerError && err.output !== undefined ? { output: err.output } : {})
			};
		} finally {
			if (timer) clearTimeout(timer);
		}
		if (controller.signal.aborted) {
			const reason = controller.signal.reason as StopReason;
			if (reason?.kind === "timeout" || reason?.kind === "shutdown")
				outcome = { ...outcome, status: "failed", error: reason.message, exitCode: outcome.exitCode ?? null };
		}
		if (run.stopTimer) clearTimeout(run.stopTimer);
		if (run.workDir) rmSync(run.workDir, { recursive: true, force: true });

		await run.logs.close(run.dropped ? 0 : LOG_FLUSH_MS);
		this.runs.delete(task.taskId);
		const current = this.ledger.get(run.taskId, run.attempt) ?? { ...entry, attempt: run.attempt };
		if (run.dropped) {
			this.ledger.put({ ...current, state: "dropped", note: run.dropped });
			return;
		}
		const result: ResultParams = {
			taskId: run.taskId,
			attempt: run.attempt,
			status: outcome.status,
			...(outcome.output !== undefined ? { output: outcome.output } : {}),
			...(outcome.error !== undefined ? { error: outcome.error.slice(0, 16_000) } : {}),
			...(typeof outcome.exitCode === "number" ? { exitCode: outcome.exitCode } : {})
		};
		this.log.info(
			`Task ${run.taskId} (attempt ${run.attempt}, ${run.type}) ${outcome.status}${outcome.error ? `: ${outcome.error}` : ""} in ${Date.now() - run.startedAt} ms`
		);
		this.ledger.put({ ...current, state: "done", result });
		this.kickOutbox();
	}

	/**
	 * When the agent kills a run: at the payload's `timeout` (s) when it gives one shorter than the
	 * task's, else a moment after the task's own `timeout` — Tern's deadline, which Tern enforces
	 * (TIMEOUT, and a cancel to the agent); the agent's own kill is for when Tern cannot say so.
	 */
	private timeoutOf(task: TaskPush): { seconds: number; ms: number } | null {
		const own = (task.payload as { timeout?: unknown } | null)?.timeout;
		const payloadSeconds = typeof own === "number" && own > 0 ? own : Infinity;
		const taskSeconds = task.timeout > 0 ? task.timeout : Infinity;
		if (payloadSeconds < taskSeconds) return { seconds: payloadSeconds, ms: Math.round(payloadSeconds * 1000) };
		if (!Number.isFinite(taskSeconds)) return null;
		return { seconds: taskSeconds, ms: Math.round(taskSeconds * 1000) + TIMEOUT_MARGIN_MS };
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
		this.kickOutbox();
	}

	// ---------------------------------------------------------------- results out

	private kickOutbox(): void {
		this.flushOutbox().catch(err => {
			this.log.error(`Sending held results failed: ${(err as Error)?.stack ?? String(err)}`);
			this.retryOutboxLater();
		});
	}

	/** Sends held results, oldest first, one at a time; what cannot go now is retried later. */
	flushOutbox(): Promise<void> {
		if (this.flushing) {
			this.flushAgain = true;
			return this.flushing;
		}
		this.flushing = (async () => {
			do {
				this.flushAgain = false;
				for (const entry of this.ledger.outbox()) {
					const result = entry.result!;
					try {
						const reply = await this.terminal.result(result);
						this.stats.resultsSent++;
						this.outboxBackoff.reset();
						this.ledger.put({ ...entry, state: "sent", note: reply?.duplicate ? "Tern had it already" : undefined });
						this.log.debug(
							`Result of ${entry.taskId}#${entry.attempt} taken by Tern (${String(reply?.status ?? "ok")})`
						);
					} catch (err) {
						if (err instanceof TernError && err.definitive) {
							this.log.warn(
								`Tern refused the result of ${entry.taskId}#${entry.attempt}: ${err.message} (${err.type})`
							);
							this.ledger.put({ ...entry, state: "refused", note: `${err.type}: ${err.message}` });
							continue;
						}
						this.log.info(
							`Result of ${entry.taskId}#${entry.attempt} held (${(err as Error).message}): sent again later`
						);
						this.retryOutboxLater();
						return;
					}
				}
			} while (this.flushAgain);
		})().finally(() => (this.flushing = null));
		return this.flushing;
	}

	private retryOutboxLater(): void {
		if (this.flushTimer || this.draining) return;
		this.flushTimer = setTimeout(() => {
			this.flushTimer = null;
			this.kickOutbox();
		}, this.outboxBackoff.next());
		this.flushTimer.unref();
	}
}
