/**
 * One run of a task: what the agent tracks while it runs, the runner called with its context,
 * the agent's own kill at the timeout, and the outcome turned into the result Tern gets.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ResultParams, TaskPush } from "../../lib/contracts.ts";
import {
	RunnerError,
	type RunContext,
	type RunOutcome,
	type Runner,
	type ScriptSource,
	type StopReason
} from "../runners/base.ts";
import type { AgentConfig } from "./config.ts";
import type { Logger } from "./log.ts";
import { LogPump, type LogItem } from "./logs.ts";

/** How long after the task's own timeout the agent kills a run Tern did not cancel. */
const TIMEOUT_MARGIN_MS = 1000;
/** Longest error text sent with a result. */
const MAX_ERROR_CHARS = 16_000;

/** One task being run here. `attempt` moves up when a later attempt takes the run over. */
export interface Run {
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

/** A run starting now; its output goes to `progress` (with the run's current attempt). */
export function newRun(task: TaskPush, logLimit: number, progress: (run: Run, item: LogItem) => Promise<unknown>): Run {
	const run: Run = {
		taskId: task.taskId,
		attempt: task.attempt,
		type: task.type,
		task,
		controller: new AbortController(),
		logs: new LogPump(item => progress(run, item), logLimit),
		acked: 0,
		dropped: null,
		workDir: null,
		startedAt: Date.now(),
		stopTimer: null,
		pgid: null
	};
	return run;
}

export interface PerformOptions {
	config: AgentConfig;
	logger: Logger;
	scripts: ScriptSource;
	/** The runner names this agent has, for the error when the task's is missing. */
	capabilities: string[];
	/** The run started a process group (recorded so that a later agent can end it). */
	started(pgid: number): void;
}

/**
 * Runs the task with `runner` to its outcome, and never throws: a runner's failure, a timeout
 * or a shutdown is a FAILED outcome that says why.
 */
export async function perform(run: Run, runner: Runner | undefined, options: PerformOptions): Promise<RunOutcome> {
	const { task, controller } = run;
	const { config, logger } = options;
	const timeout = timeoutOf(task);
	const timer = timeout
		? setTimeout(() => {
				logger.warn(`Task ${task.taskId} (attempt ${run.attempt}) timed out after ${timeout.seconds} s: killing it`);
				controller.abort({
					kind: "timeout",
					message: `Timed out after ${timeout.seconds} s: the agent killed it (SIGTERM, then SIGKILL after ${config.killGraceMs / 1000} s)`
				} satisfies StopReason);
			}, timeout.ms)
		: null;

	let outcome: RunOutcome;
	try {
		if (!runner)
			throw new RunnerError(
				`Runner '${task.type}' is not available on this terminal (it has: ${options.capabilities.join(", ") || "none"})`
			);
		const ctx: RunContext = {
			task,
			payload: task.payload,
			signal: controller.signal,
			deadline: timeout ? run.startedAt + timeout.ms : Infinity,
			config,
			logger,
			scripts: options.scripts,
			log: (stream, text) => run.logs.write(stream, text),
			percent: value => run.logs.percent(value),
			started: pgid => {
				run.pgid = pgid;
				options.started(pgid);
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
	return outcome;
}

/** The result Tern gets for the run's current attempt. */
export function toResult(run: Run, outcome: RunOutcome): ResultParams {
	return {
		taskId: run.taskId,
		attempt: run.attempt,
		status: outcome.status,
		...(outcome.output !== undefined ? { output: outcome.output } : {}),
		...(outcome.error !== undefined ? { error: outcome.error.slice(0, MAX_ERROR_CHARS) } : {}),
		...(typeof outcome.exitCode === "number" ? { exitCode: outcome.exitCode } : {})
	};
}

/**
 * When the agent kills a run: at the payload's `timeout` (s) when it gives one shorter than the
 * task's, else a moment after the task's own `timeout` — Tern's deadline, which Tern enforces
 * (TIMEOUT, and a cancel to the agent); the agent's own kill is for when Tern cannot say so.
 */
export function timeoutOf(task: TaskPush): { seconds: number; ms: number } | null {
	const own = (task.payload as { timeout?: unknown } | null)?.timeout;
	const payloadSeconds = typeof own === "number" && own > 0 ? own : Infinity;
	const taskSeconds = task.timeout > 0 ? task.timeout : Infinity;
	if (payloadSeconds < taskSeconds) return { seconds: payloadSeconds, ms: Math.round(payloadSeconds * 1000) };
	if (!Number.isFinite(taskSeconds)) return null;
	return { seconds: taskSeconds, ms: Math.round(taskSeconds * 1000) + TIMEOUT_MARGIN_MS };
}
