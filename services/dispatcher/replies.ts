/**
 * The terminal's replies: ack, progress and result, one at a time or as a gateway's batch. Each
 * is checked and decided by the transitions; a compare-and-set that fails because the task moved
 * meanwhile (its own ack, handled concurrently) is read again and decided anew.
 */
import { fields } from "../../lib/log-format.ts";
import type { ReplyAnswer, TaskLogLine, TaskStatus, TerminalReply } from "../../lib/contracts.ts";
import { Errors, ErrorTypes, toErrorPayload } from "../../lib/errors.ts";
import type { TaskRow } from "../../models/task.model.ts";
import type { DispatcherCore } from "./core.ts";
import type { Finishing } from "./finishing.ts";
import type { ProgressActionParams, ResultActionParams } from "./params.ts";
import { holderError, isFinal, transition } from "./transitions.ts";

export interface ReplyView {
	taskId: string;
	attempt: number;
	status: TaskStatus;
	duplicate?: boolean;
}

export class Replies {
	private readonly core: DispatcherCore;
	private readonly finishing: Finishing;
	/** Tasks whose output passed the bound (logged once each), cleared with the hourly prune. */
	readonly truncated = new Set<string>();

	constructor(core: DispatcherCore, finishing: Finishing) {
		this.core = core;
		this.finishing = finishing;
	}

	/**
	 * The row to decide on: the one this replica last wrote on the first try (nearly always current,
	 * since the terminal's owner delivered the task), the database's after that.
	 */
	private async read(taskId: string, tries: number): Promise<{ row: TaskRow; cached: boolean }> {
		const cached = tries === 1 ? this.core.rows.get(taskId) : undefined;
		return cached ? { row: cached, cached: true } : { row: await this.core.mustGet(taskId), cached: false };
	}

	/** `ack`: DELIVERED → PROCESSING. Repeating it is harmless. */
	ack(terminalId: string, taskId: string, attempt: number): Promise<ReplyView> {
		return this.core.answering.during(taskId, attempt, () => this.acknowledge(terminalId, taskId, attempt));
	}

	private async acknowledge(terminalId: string, taskId: string, attempt: number): Promise<ReplyView> {
		for (let tries = 1; ; tries++) {
			const { row, cached } = await this.read(taskId, tries);
			const outcome = transition(row, { kind: "ack", terminalId, attempt }, Date.now());
			if (outcome.kind === "refused") {
				if (cached) continue;
				throw outcome.error;
			}
			if (outcome.kind === "same") return { taskId, attempt, status: row.status };
			if (await this.core.write(row, outcome)) return { taskId, attempt, status: "PROCESSING" };
			if (tries >= 3) throw Errors.stateConflict(taskId);
		}
	}

	/** `result`: the attempt's outcome. A result over the size limit fails its task, and says so. */
	result(terminalId: string, params: ResultActionParams): Promise<ReplyView> {
		return this.core.answering.during(params.taskId, params.attempt, () => this.finish(terminalId, params));
	}

	private async finish(terminalId: string, params: ResultActionParams): Promise<ReplyView> {
		const output = params.output === undefined ? null : JSON.stringify(params.output);
		const bytes = output === null ? 0 : Buffer.byteLength(output);
		const limit = this.core.settings.maxResultBytes;
		if (bytes > limit) {
			await this.failTooLarge(terminalId, params, bytes, limit);
			throw Errors.resultTooLarge(params.taskId, bytes, limit);
		}
		// The gateway refuses an oversize result itself and reports the attempt failed with that
		// reason: it ends the task as an oversize result here does, without retries.
		if (params.status === "failed" && params.error?.startsWith(`${ErrorTypes.RESULT_TOO_LARGE}:`)) {
			await this.fail(terminalId, params, params.error);
			return { taskId: params.taskId, attempt: params.attempt, status: "FAILED" };
		}
		const fields = { output, error: params.error ?? null, exitCode: params.exitCode ?? null };
		for (let tries = 1; ; tries++) {
			const { row, cached } = await this.read(params.taskId, tries);
			const event = { kind: "result", terminalId, attempt: params.attempt, status: params.status, fields } as const;
			const outcome = transition(row, event, Date.now());
			if (outcome.kind === "refused") {
				if (cached) continue;
				throw outcome.error;
			}
			if (outcome.kind === "same") return { taskId: row.id, attempt: row.attempt, status: row.status, duplicate: true };
			const next = await this.finishing.end(row, outcome);
			if (!next) {
				if (tries < 5) continue;
				throw Errors.stateConflict(row.id);
			}
			this.finishing.routing.drainLater(terminalId);
			return { taskId: row.id, attempt: row.attempt, status: next.status };
		}
	}

	/** The attempt ends FAILED with the reason, once; the terminal's reply is refused either way. */
	private failTooLarge(terminalId: string, params: ResultActionParams, bytes: number, limit: number): Promise<void> {
		return this.fail(
			terminalId,
			params,
			`${ErrorTypes.RESULT_TOO_LARGE}: the result was ${bytes} bytes; the limit is ${limit} bytes`
		);
	}

	/** Ends the task FAILED with `error`, without retries: the same work would fail the same way. */
	private async fail(terminalId: string, params: ResultActionParams, error: string): Promise<void> {
		const row = await this.core.mustGet(params.taskId);
		const event = {
			kind: "result",
			terminalId,
			attempt: params.attempt,
			status: "failed",
			fields: { error },
			final: true
		} as const;
		const outcome = transition(row, event, Date.now());
		if (outcome.kind === "refused") throw outcome.error;
		if (outcome.kind === "change" && (await this.core.write(row, outcome))) this.finishing.routing.drainLater(terminalId);
	}

	/** `progress`: percent is kept, log lines are kept (up to a bound) and relayed to followers. */
	async progress(terminalId: string, params: ProgressActionParams): Promise<ReplyView> {
		const { core } = this;
		const row = await core.mustGet(params.taskId);
		core.rows.delete(row.id);
		if (isFinal(row.status)) throw Errors.taskFinished(row.id, row.status);
		const wrong = holderError(row, terminalId, params.attempt);
		if (wrong) throw wrong;
		const now = Date.now();
		if (params.percent !== undefined)
			await core.store.transition(
				row.id,
				{ status: ["DELIVERED", "PROCESSING"], attempt: params.attempt },
				{ progress: Math.round(params.percent), updatedAt: now }
			);
		if (params.log) {
			const { maxLogLines } = core.settings;
			const kept = await core.store.appendLog(
				row.id,
				params.attempt,
				params.stream ?? "stdout",
				params.log,
				now,
				maxLogLines
			);
			if (!kept && !this.truncated.has(row.id)) {
				this.truncated.add(row.id);
				core.logger.debug(
					fields({ taskId: row.id }),
					`Output of task ${row.id} passed ${maxLogLines} lines: the rest is relayed, not kept`
				);
			}
		}
		// Status events waiting to go out go first: a follower sees PROCESSING before the progress.
		core.outbox.flushEvents();
		void Promise.resolve(
			core.ports.broadcast("task.progress", {
				taskId: row.id,
				attempt: params.attempt,
				percent: params.percent,
				log: params.log,
				stream: params.log ? (params.stream ?? "stdout") : undefined,
				at: new Date(now).toISOString()
			})
		).catch(() => undefined);
		return { taskId: row.id, attempt: params.attempt, status: row.status };
	}

	/** The stored output of a task, after line `after`. */
	async logs(taskId: string, after: number, limit: number): Promise<{ lines: TaskLogLine[]; next: number }> {
		await this.core.mustGet(taskId);
		const rows = await this.core.store.logs(taskId, after, limit);
		const lines = rows.map(r => ({
			seq: Number(r.seq),
			attempt: Number(r.attempt),
			stream: r.stream as TaskLogLine["stream"],
			text: r.text,
			at: new Date(Number(r.at)).toISOString()
		}));
		return { lines, next: lines.at(-1)?.seq ?? after };
	}

	/**
	 * A gateway's batch of terminal replies: each answered as `ack`/`result` would answer it. Replies
	 * about one task are handled in the order given (an ack before the result behind it); the
	 * others side by side, so that their writes share commits.
	 */
	batch(replies: TerminalReply[]): Promise<ReplyAnswer[]> {
		const chains = new Map<string, Promise<unknown>>();
		return Promise.all(
			replies.map(reply => {
				const handle = async (): Promise<ReplyAnswer> => {
					try {
						const ok =
							reply.kind === "ack"
								? await this.ack(reply.terminalId, reply.taskId, reply.attempt)
								: await this.result(reply.terminalId, reply);
						return { ok: { ...ok } };
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
}
