/**
 * The evaluation loop: every tick, one reading of the cluster, then each rule this replica owns
 * judged against it and the outcome handed to the alert service, which keeps the alerts' state
 * and sends. Rules are shared among monitor replicas by rendezvous hashing on the rule id
 * (lib/owners.ts), so each is evaluated by one; while two replicas disagree for a moment, the
 * alert service's compare-and-set writes make one of them win.
 */
import type { Logger } from "moleculer";
import { call, type Caller } from "../../lib/actions.ts";
import type { AlertRuleView, FireEvent, TaskStatusEvent } from "../../lib/contracts.ts";
import { Ownership } from "../../lib/owners.ts";
import { observe, type Memory, type SignalOptions } from "./signals.ts";
import type { Sampler } from "./sampler.ts";
import { EventWindow, SampleHistory, WINDOW_SECONDS } from "./windows.ts";

const FIRE_PROBLEMS: ReadonlySet<string> = new Set(["MISSED", "NO_TERMINAL"]);
const FINAL: ReadonlySet<string> = new Set(["COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "EXPIRED"]);

export interface TickOutcome {
	rules: number;
	evaluated: number;
	firing: number;
}

export class Evaluator {
	readonly memory: Memory = { counts: new EventWindow(), online: new SampleHistory(), fireProblems: [] };
	readonly ownership: Ownership;
	/** Nodes that left unexpectedly, by id, since when. */
	readonly nodesDown = new Map<string, number>();
	private readonly caller: Caller;
	private readonly sampler: Sampler;
	/** Changed at run time (`minTasksForRate`). */
	readonly options: SignalOptions;
	private readonly logger: Logger;
	private running: Promise<TickOutcome> | null = null;

	constructor(caller: Caller, nodeID: string, sampler: Sampler, options: SignalOptions, logger: Logger) {
		this.caller = caller;
		this.ownership = new Ownership(nodeID);
		this.sampler = sampler;
		this.options = { ...options };
		this.logger = logger;
	}

	/** Task state changes, as the dispatchers announce them. */
	recordStatuses(events: TaskStatusEvent[], now = Date.now()): void {
		const counts = this.memory.counts;
		for (const event of events) {
			if (event.submitted) counts.add("submitted", now);
			if (!FINAL.has(event.status)) continue;
			counts.add("ended", now);
			if (event.status === "COMPLETED") counts.add("completed", now);
			else if (event.status === "FAILED") counts.add("failed", now);
			else if (event.status === "TIMEOUT") counts.add("timedOut", now);
		}
	}

	/** A fire time that went wrong, as the schedulers announce it. */
	recordFire(event: FireEvent, now = Date.now()): void {
		if (!FIRE_PROBLEMS.has(event.outcome)) return;
		const problems = this.memory.fireProblems;
		problems.push({ jobId: event.jobId, outcome: event.outcome, at: now });
		const oldest = now - WINDOW_SECONDS * 1000;
		while (problems.length > 0 && problems[0].at < oldest) problems.shift();
	}

	nodeLeft(nodeID: string, unexpected: boolean, now = Date.now()): void {
		if (unexpected) this.nodesDown.set(nodeID, now);
		else this.nodesDown.delete(nodeID);
	}

	nodeBack(nodeID: string): void {
		this.nodesDown.delete(nodeID);
	}

	/** One evaluation; a tick that comes while one runs joins it. */
	tick(now = Date.now()): Promise<TickOutcome> {
		this.running ??= this.evaluate(now).finally(() => (this.running = null));
		return this.running;
	}

	private async evaluate(now: number): Promise<TickOutcome> {
		const nodesDown = [...this.nodesDown].map(([nodeID, since]) => ({ nodeID, since }));
		const snapshot = await this.sampler.sample(nodesDown, now);
		const rules = await this.rules();
		const outcome: TickOutcome = { rules: rules.length, evaluated: 0, firing: 0 };
		// The reading joins the history after the rules saw it: a drop compares now with before.
		for (const rule of rules) {
			if (!this.ownership.owns(rule.id)) continue;
			const active = observe(rule, snapshot, this.memory, this.options);
			if (active === null) continue;
			try {
				const answer = await call(this.caller, "alert.evaluate", { ruleId: rule.id, at: now, active });
				outcome.evaluated++;
				outcome.firing += answer.firing;
			} catch (err) {
				this.logger.warn(`Rule '${rule.name}' could not be evaluated:`, (err as Error).message);
			}
		}
		if (snapshot.terminals) this.memory.online.add(now, snapshot.terminals.online);
		return outcome;
	}

	private async rules(): Promise<AlertRuleView[]> {
		try {
			return await call(this.caller, "alert.activeRules", {});
		} catch (err) {
			this.logger.debug("No alert rules to evaluate:", (err as Error).message);
			return [];
		}
	}
}
