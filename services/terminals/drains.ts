/**
 * Which terminals this replica knows to be draining, and the step that ends a drain: once a
 * draining terminal holds no task, it is told to disconnect — once per drain.
 *
 * Checks are started by task events, which come in bursts: checks of one terminal never
 * overlap, and an event that arrives during a check makes that check run once more, so the
 * last task's end is never missed.
 */
import type { Context } from "moleculer";

interface Drain {
	/** It was told to disconnect: this drain is done (it may connect again; it gets no work). */
	done: boolean;
	checking: boolean;
	again: boolean;
}

export interface DrainSteps {
	/** Tasks it holds now. */
	running(ctx: Context, terminalId: string): Promise<number>;
	disconnect(ctx: Context, terminalId: string): Promise<void>;
}

export class Drains {
	private readonly drains = new Map<string, Drain>();
	private readonly steps: DrainSteps;

	constructor(steps: DrainSteps) {
		this.steps = steps;
	}

	/** Follows the registry: a drain begins (again, when asked again) or ends. */
	set(terminalId: string, draining: boolean, restart = false): void {
		if (!draining) this.drains.delete(terminalId);
		else if (restart || !this.drains.has(terminalId))
			this.drains.set(terminalId, { done: false, checking: false, again: false });
	}

	has(terminalId: string): boolean {
		return this.drains.has(terminalId);
	}

	/** Disconnects the terminal if it is draining and holds nothing any more. */
	async settle(ctx: Context, terminalId: string): Promise<void> {
		const drain = this.drains.get(terminalId);
		if (!drain || drain.done) return;
		if (drain.checking) {
			drain.again = true;
			return;
		}
		drain.checking = true;
		try {
			do {
				drain.again = false;
				if ((await this.steps.running(ctx, terminalId)) > 0) continue;
				if (this.drains.get(terminalId) !== drain) return;
				drain.done = true;
				await this.steps.disconnect(ctx, terminalId);
				return;
			} while (drain.again);
		} finally {
			drain.checking = false;
		}
	}
}
