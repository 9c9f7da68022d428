/**
 * What the scheduler asks of the dispatcher: submit a fire's task(s), read tasks' statuses from
 * the tasks table, cancel a task. The only module here that calls another service.
 */
import type { Keyring } from "../../lib/keyring.ts";
import { openJobTask, type StoredTask } from "./secrets.ts";
import type { ServiceBroker } from "moleculer";
import { FINAL_STATUSES, type SocketErrorPayload, type SubmitResult, type TaskStatus } from "../../lib/contracts.ts";
import { call } from "../../lib/actions.ts";

/** Tasks whose status is asked for in one call (the dispatcher's limit). */
const STATUS_BATCH = 5000;

/**
 * Errors of a submit that mean "nobody can take this task", not "try again": the fire is
 * settled NO_TERMINAL. Any other error leaves the claim for recovery to complete.
 */
const NO_TERMINAL_TYPES: ReadonlySet<string> = new Set(["NO_MATCHING_TERMINAL", "TERMINAL_NOT_FOUND", "TERMINAL_DISABLED"]);

/** The refusal's message when a submit error means NO_TERMINAL, else null. */
export function noTerminalReason(err: { type?: string; message?: string }): string | null {
	return err.type !== undefined && NO_TERMINAL_TYPES.has(err.type) ? (err.message ?? err.type) : null;
}

const typeOf = (err: unknown) => (err as { type?: string }).type;

export class DispatcherClient {
	private readonly broker: ServiceBroker;
	private readonly keyring: Keyring;

	constructor(broker: ServiceBroker, keyring: Keyring) {
		this.broker = broker;
		this.keyring = keyring;
	}

	/** A job's task, its secrets opened for the dispatcher (which seals them into the task). */
	submit(task: StoredTask): Promise<SubmitResult> {
		return call(this.broker, "dispatcher.submit", openJobTask(task, this.keyring));
	}

	/** One answer per task, in order: its result or its error. */
	submitMany(tasks: StoredTask[]): Promise<(SubmitResult | { error: SocketErrorPayload })[]> {
		return call(this.broker, "dispatcher.submitMany", { tasks: tasks.map(task => openJobTask(task, this.keyring)) });
	}

	/** Those of the tasks that are final (or gone), read from the tasks table in batches. */
	async finalTasks(taskIds: string[]): Promise<Set<string>> {
		const final = new Set<string>();
		for (let i = 0; i < taskIds.length; i += STATUS_BATCH) {
			const chunk = taskIds.slice(i, i + STATUS_BATCH);
			let statuses: Record<string, string>;
			try {
				statuses = await call(this.broker, "dispatcher.statuses", {
					taskIds: chunk
				});
			} catch (err) {
				// A dispatcher of an older version, in a rolling upgrade: one by one.
				if (typeOf(err) !== "SERVICE_NOT_FOUND") throw err;
				for (const taskId of chunk) if (await this.isFinal(taskId)) final.add(taskId);
				continue;
			}
			for (const taskId of chunk) {
				const status = statuses[taskId];
				if (status === undefined || FINAL_STATUSES.has(status as TaskStatus)) final.add(taskId);
			}
		}
		return final;
	}

	private async isFinal(taskId: string): Promise<boolean> {
		try {
			const view = await call(this.broker, "dispatcher.query", { taskId });
			return FINAL_STATUSES.has(view.status);
		} catch (err) {
			if (typeOf(err) === "TASK_NOT_FOUND") return true;
			throw err;
		}
	}

	/** False when the task had ended (or is gone) already. */
	async cancel(taskId: string): Promise<boolean> {
		try {
			await this.broker.call("dispatcher.cancel", { id: taskId });
			return true;
		} catch (err) {
			const type = typeOf(err);
			if (type === "TASK_FINISHED" || type === "TASK_NOT_FOUND") return false;
			throw err;
		}
	}
}
