/**
 * Messages between the benchmark's main thread (which runs Tern) and its load worker (which
 * runs the terminals and the submitters), so that the two do not share one event loop.
 */
import type { Summary } from "./stats.ts";

export interface WorkerSetup {
	/** Base URL of the REST api the submitters call. */
	url: string;
	/** Where terminals connect (socket.io namespace /terminal): terminal i through gatewayUrls[i % length]. */
	gatewayUrls: string[];
	adminToken: string;
	terminals: { id: string; token: string }[];
	/** Slots each terminal advertises at connect. */
	concurrency: number;
	/** Emit `result` right after `ack` instead of after the ack's reply. */
	pipeline: boolean;
}

export interface ClosedLoopSpec {
	kind: "closed";
	phase: number;
	type: string;
	tasks: number;
	concurrency: number;
	/** Tasks per submit: 1 is `POST /api/task/submit`, more is `POST /api/tasks/batch`. */
	batch: number;
	/** Tasks submitted but not yet completed, at most (0: no bound beyond the submitters). */
	window: number;
	payloadBytes: number;
	stallMs: number;
}

export interface OpenLoopSpec {
	kind: "open";
	phase: number;
	type: string;
	rate: number;
	seconds: number;
	payloadBytes: number;
	stallMs: number;
}

export type PhaseSpec = ClosedLoopSpec | OpenLoopSpec;

export type WorkerCommand =
	| { id: number; cmd: "connect" }
	| { id: number; cmd: "run"; spec: PhaseSpec }
	| { id: number; cmd: "totals" }
	| { id: number; cmd: "close" };

export interface CpuTime {
	user: number;
	system: number;
}

export interface PhaseReport {
	kind: "closed" | "open";
	type: string;
	/** Tasks the phase meant to submit. */
	intended: number;
	/** Submits answered 201. */
	submitted: number;
	submitErrors: number;
	/** Tasks whose result reply said COMPLETED. */
	completed: number;
	/** Tasks submitted but never seen COMPLETED before the phase ended. */
	missing: number;
	/** First submit to last COMPLETED reply, ms. */
	elapsedMs: number;
	/** First submit to the last submit reply, ms. */
	submitElapsedMs: number;
	timedOut: boolean;
	/** Submit sent (closed loop) or intended send time (open loop) → the terminal gets `task`, ms. */
	toReceive: Summary;
	/** Same start → the result's COMPLETED reply, ms. */
	toCompleted: Summary;
	/** `ack` sent → the result's COMPLETED reply, ms. */
	ackToCompleted: Summary;
	/** REST round trip of the submit, ms. */
	submitRtt: Summary;
	/** Open loop: how late the generator sent each submit after its intended time, ms. */
	sendLag: Summary | null;
	/** Median submit→receive latency of the first and the last quarter of the tasks (by send order), ms. */
	receiveTrend: { firstQuarterP50: number; lastQuarterP50: number };
	/** The load worker's own CPU time during the phase, µs. */
	workerCpu: CpuTime;
	/** A few task ids that went missing, for investigation. */
	missingSample: { seq: number; taskId: string | null; received: boolean; acked: boolean }[];
}

export interface Totals {
	deliveries: number;
	duplicates: { taskId: string; attempt: number; terminalId: string }[];
	redeliveries: number;
	cancels: number;
	/** Error replies and `error` events, by kind. */
	errors: Record<string, number>;
	errorSamples: string[];
	disconnects: number;
}

export type WorkerReply = { id: number; ok: true; result?: unknown } | { id: number; ok: false; error: string };
