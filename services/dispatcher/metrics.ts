/**
 * The dispatcher's metrics wiring: the task series its core feeds, the group commit's observer,
 * and the queue depth, counted in the database now and then (other replicas add to the queue
 * too, so no replica's memory knows it).
 */
import type { Logger, MetricRegistry } from "moleculer";
import { CommitMetrics } from "../../lib/metrics/commits.ts";
import { TaskMetrics } from "../../lib/metrics/tasks.ts";
import type { TaskStore } from "./store.ts";

export interface DispatcherMetrics {
	tasks: TaskMetrics;
	/** For TaskStore.open: told of each group commit. */
	onCommit(writes: number, ms: number): void;
}

export function dispatcherMetrics(registry: MetricRegistry): DispatcherMetrics {
	const commits = new CommitMetrics(registry);
	return { tasks: new TaskMetrics(registry), onCommit: (writes, ms) => commits.committed(writes, ms) };
}

/** Counts PENDING tasks per priority every `intervalMs`; undefined (no timer) when metrics are off. */
export function watchQueueDepth(
	store: TaskStore,
	metrics: TaskMetrics,
	intervalMs: number,
	logger: Logger
): NodeJS.Timeout | undefined {
	if (!metrics.enabled) return undefined;
	return setInterval(
		() =>
			void store.pendingByPriority().then(
				counts => metrics.queueDepth(counts),
				err => logger.debug("Queue depth not read", err)
			),
		intervalMs
	);
}
