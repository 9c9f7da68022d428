/**
 * The dispatcher's series about tasks, fed from the one place every change passes (the
 * dispatcher core's `write`, and admission for new rows): which state each task enters, how
 * long each phase took, and why attempts ended. All of it is read off the row before and after
 * the change, so no module has to remember to count.
 */
import type { MetricRegistry, MetricTypes } from "moleculer";
import { FINAL_STATUSES, type TaskStatus } from "../contracts.ts";
import { ErrorTypes } from "../errors.ts";
import { BoundedLabel } from "./bounded-label.ts";
import { LabelCache } from "./labels.ts";
import { series } from "./series.ts";

/** The fields of a task row the series are read from. Times are Unix ms (MySQL may give strings). */
export interface TaskFacts {
	status: TaskStatus;
	type: string;
	priority: number;
	createdAt: number;
	updatedAt: number;
	deliveredAt: number | null;
	startedAt: number | null;
	finishedAt: number | null;
	error: string | null;
}

/** What the change says beyond the row: a retry, and how the attempt before it ended. */
export interface ChangeFacts {
	retry?: { ended: "FAILED" | "TIMEOUT" };
}

const TERN_TYPES: ReadonlySet<string> = new Set(Object.values(ErrorTypes));
const PHASES = ["queue", "start", "run", "total"] as const;

/** Two-level label cache: no key string is built per call. */
class PairLabels<L extends Record<string, string>> {
	private readonly outer = new Map<string, LabelCache<string, L>>();
	private readonly make: (a: string, b: string) => L;

	constructor(make: (a: string, b: string) => L) {
		this.make = make;
	}

	get(a: string, b: string): L {
		let inner = this.outer.get(a);
		if (!inner) this.outer.set(a, (inner = new LabelCache(key => this.make(a, key))));
		return inner.get(b);
	}
}

export class TaskMetrics {
	private readonly tasks: MetricTypes.Counter | null;
	private readonly transitions: MetricTypes.Counter | null;
	private readonly phases: MetricTypes.Histogram | null;
	private readonly timeouts: MetricTypes.Counter | null;
	private readonly failures: MetricTypes.Counter | null;
	private readonly retries: MetricTypes.Counter | null;
	private readonly depth: MetricTypes.Gauge | null;
	private readonly types = new BoundedLabel(50);
	private readonly byStatusType = new PairLabels((status, type) => ({ status, type }));
	private readonly byMove = new PairLabels((from, to) => ({ from, to }));
	private readonly byPhase = Object.fromEntries(PHASES.map(phase => [phase, { phase }])) as Record<
		(typeof PHASES)[number],
		{ phase: string }
	>;
	private readonly byKind = new LabelCache((kind: string) => ({ kind }));
	private readonly byCategory = new LabelCache((category: string) => ({ category }));
	private readonly byPriority = new LabelCache((priority: number) => ({ priority: String(priority) }));
	private readonly depthShown = new Set<number>();

	constructor(registry: MetricRegistry) {
		this.tasks = series(registry, "tern_tasks_total");
		this.transitions = series(registry, "tern_task_transitions_total");
		this.phases = series(registry, "tern_task_phase_seconds");
		this.timeouts = series(registry, "tern_task_timeouts_total");
		this.failures = series(registry, "tern_task_failures_total");
		this.retries = series(registry, "tern_task_retries_total");
		this.depth = series(registry, "tern_queue_depth");
	}

	get enabled(): boolean {
		return this.tasks !== null;
	}

	/** A new task written: PENDING, or DELIVERED straight to an idle terminal (no time queued). */
	admitted(row: TaskFacts): void {
		if (!this.tasks) return;
		this.tasks.increment(this.byStatusType.get(row.status, this.types.value(row.type)));
		if (row.status === "DELIVERED") this.phases!.observe(0, this.byPhase.queue);
	}

	/** A change written: `prev` the row before it, `next` after. */
	changed(prev: TaskFacts, next: TaskFacts, change: ChangeFacts): void {
		if (!this.tasks || prev.status === next.status) return;
		this.tasks.increment(this.byStatusType.get(next.status, this.types.value(next.type)));
		this.transitions!.increment(this.byMove.get(prev.status, next.status));
		this.phasesOf(prev, next);
		const ended = change.retry?.ended ?? (next.status === "FAILED" || next.status === "TIMEOUT" ? next.status : null);
		if (ended === "TIMEOUT") this.timeouts!.increment(this.byKind.get(prev.status === "DELIVERED" ? "ack" : "run"));
		else if (ended === "FAILED") this.failures!.increment(this.byCategory.get(category(next.error)));
		if (next.status === "EXPIRED") this.timeouts!.increment(this.byKind.get("ttl"));
		if (change.retry) this.retries!.increment();
	}

	/** PENDING tasks per priority now; a priority no longer queued shows 0. */
	queueDepth(counts: { priority: number; n: number }[]): void {
		if (!this.depth) return;
		const now = new Set<number>();
		for (const { priority, n } of counts) {
			now.add(priority);
			this.depthShown.add(priority);
			this.depth.set(n, this.byPriority.get(priority));
		}
		for (const priority of this.depthShown) if (!now.has(priority)) this.depth.set(0, this.byPriority.get(priority));
	}

	private phasesOf(prev: TaskFacts, next: TaskFacts): void {
		const phases = this.phases!;
		if (prev.status === "PENDING" && next.status === "DELIVERED")
			phases.observe(seconds(next.deliveredAt, prev.updatedAt), this.byPhase.queue);
		else if (next.status === "PROCESSING" && prev.deliveredAt !== null)
			phases.observe(seconds(next.startedAt, prev.deliveredAt), this.byPhase.start);
		if (prev.status === "PROCESSING" && prev.startedAt !== null)
			phases.observe(seconds(next.finishedAt ?? next.updatedAt, prev.startedAt), this.byPhase.run);
		if (FINAL_STATUSES.has(next.status)) phases.observe(seconds(next.finishedAt, next.createdAt), this.byPhase.total);
	}
}

function seconds(end: number | null, start: number | null): number {
	if (end === null || start === null) return 0;
	return Math.max(0, Number(end) - Number(start)) / 1000;
}

/** Tern's own error type when the error starts with one ("RESULT_TOO_LARGE: …"), else the terminal's. */
function category(error: string | null): string {
	const match = error === null ? null : /^([A-Z][A-Z0-9_]*):/.exec(error);
	return match && TERN_TYPES.has(match[1]) ? match[1] : "task_error";
}
