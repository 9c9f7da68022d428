/** The dispatcher's settings, read by its service and every one of its modules. */
import type { ServiceSettingSchema } from "moleculer";

export interface DispatcherSettings extends ServiceSettingSchema {
	/** Defaults of a task body, in seconds as the API speaks. */
	defaults: { priority: number; timeout: number; ackTimeout: number; ttl: number; maxRetries: number };
	/** Largest payload, bytes of JSON. @defaultValue 256 KiB */
	maxPayloadBytes: number;
	/** Largest result `output`, bytes of JSON; a larger one fails its task with RESULT_TOO_LARGE. @defaultValue 1 MiB */
	maxResultBytes: number;
	/** How long an idempotency key maps to its task, ms. @defaultValue 24 h */
	idempotencyWindow: number;
	/** Pushes without an ack before the task times out. @defaultValue 3 */
	maxDeliveries: number;
	/** How often deadlines are enforced, ms. @defaultValue 250 */
	sweepInterval: number;
	/** How often queues of online terminals are re-checked in case a drain was missed, ms. @defaultValue 5000 */
	rescanInterval: number;
	/** Rows handled per deadline kind per sweep. @defaultValue 500 */
	sweepBatch: number;
	/** Output lines kept per task (`progress` logs). @defaultValue 10000 */
	maxLogLines: number;
	/** How long task output is kept, ms. @defaultValue 7 days */
	logRetention: number;
	/** How often the queue depth per priority is counted for the metrics, ms. @defaultValue 5000 */
	queueDepthInterval: number;
	dbUri: string;
	/** A statement not answered within this long means the database is away (degraded mode), ms; 0: never. @defaultValue 5000 */
	dbDeadlineMs: number;
	/** How often a degraded dispatcher asks whether its database is back, ms. @defaultValue 1000 */
	dbProbeInterval: number;
	/**
	 * Terminals whose new session's queue is handed out at once; more connecting together wait
	 * their turn, the most urgent queue first. @defaultValue 32
	 */
	connectConcurrency: number;
	/** The journal's folder; this node's journal is `<journalDir>/<nodeID>`. Empty: `./data/journal`. */
	journalDir: string;
}
