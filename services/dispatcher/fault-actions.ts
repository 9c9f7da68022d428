/**
 * The dispatcher's part in riding out faults: opening its store with degraded mode, telling the
 * monitor about its storage, pausing while cut off from the cluster, and running its consistency
 * check. Each replica answers for itself;
 * the monitor asks every replica by node ID and merges the answers.
 */
import { join } from "node:path";
import type { Service, ServiceBroker } from "moleculer";
import type { ReconcileCheck, StorageState } from "../../lib/contracts.ts";
import { StorageMetrics } from "../../lib/metrics/commits.ts";
import type { TaskModel } from "../../models/task.model.ts";
import { ConsistencyCheck } from "./consistency.ts";
import type { Dispatcher } from "./dispatcher.ts";
import { ResilientTaskStore } from "./resilient-store.ts";
import { transportWatch } from "../../lib/transport-watch.ts";
import type { DispatcherSettings } from "./settings.ts";

type FaultsThis = Service<DispatcherSettings> & { dispatcher: Dispatcher; store: ResilientTaskStore };

/** This node's store: its journal in `<journalDir>/<nodeID>`, a `storage.changed` broadcast when degraded mode starts or ends. */
export function openStore(
	broker: ServiceBroker,
	settings: DispatcherSettings,
	model: TaskModel,
	logger: Service["logger"],
	onCommit: (writes: number, ms: number) => void
): Promise<ResilientTaskStore> {
	const folder = broker.nodeID.replace(/[^\w.-]/g, "_");
	return ResilientTaskStore.openResilient(
		model,
		settings.dbUri,
		{
			journalDir: join(settings.journalDir || join("data", "journal"), folder),
			deadlineMs: settings.dbDeadlineMs,
			probeIntervalMs: settings.dbProbeInterval,
			logger,
			metrics: broker.isMetricsEnabled() ? new StorageMetrics(broker.metrics) : null,
			onChange: state => void broker.broadcast("storage.changed", { nodeID: broker.nodeID, ...state })
		},
		onCommit
	);
}

function aliveNodes(broker: ServiceBroker): Set<string> {
	const nodes = broker.registry.getNodeList({ onlyAvailable: true, withServices: false }) as unknown as { id: string }[];
	return new Set(nodes.map(node => node.id));
}

export const faultActions = {
	/** This replica's storage: degraded or not, and its journal. */
	storage: {
		visibility: "public" as const,
		handler(this: FaultsThis): StorageState {
			return this.store.mode.status;
		}
	},

	/** This replica's consistency check, repairs included (the monitor's `POST /api/system/reconcile`). */
	reconcile: {
		visibility: "public" as const,
		async handler(this: FaultsThis): Promise<ReconcileCheck[]> {
			const alive = aliveNodes(this.broker);
			const { core, routing, deadlines } = this.dispatcher;
			return new ConsistencyCheck(core, routing, deadlines, id => alive.has(id)).run();
		}
	}
};

/**
 * Cut off from NATS, the replica stops sweeping and draining (core.cutOff); back, it counts its
 * terminals again, reads every gateway's sessions anew (`relearn`) and rescans their queues.
 * Returns the unsubscribe.
 */
export function followTransport(
	broker: ServiceBroker,
	dispatcher: () => Dispatcher | undefined,
	relearn: () => Promise<void>
): () => void {
	return transportWatch(broker).subscribe({
		down(reason) {
			const d = dispatcher();
			if (!d) return;
			d.core.cutOff = true;
			broker.logger.warn(`Cut off from the cluster (${reason}): no sweeps or drains until it is back`);
		},
		up() {
			const d = dispatcher();
			if (!d) return;
			d.core.cutOff = false;
			d.core.book.reset();
			broker.logger.info("Back in the cluster: sessions read again, queues rescanned");
			d.deadlines.rescanSoon();
			void relearn().catch(err => broker.logger.warn(`Sessions not read after the partition: ${(err as Error).message}`));
		}
	});
}
