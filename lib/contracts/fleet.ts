/** The terminal fleet, second confirmations and job summaries. */
import type { Labels } from "./core.ts";

// ---- Terminal fleet ----

/** `terminals.touch`: a terminal showed it is alive without a session (an HTTP pull). */
export interface TerminalTouchParams {
	id: string;
	transport: "pull";
}

/** `PATCH /api/terminals/:id` */
export interface TerminalPatch {
	name?: string | null;
	labels?: Labels | string[];
	concurrency?: number;
}

/** `DELETE /api/terminals/:id`, once confirmed: the pinned tasks it left behind were cancelled. */
export interface TerminalDeleted {
	id: string;
	deleted: true;
	tasks: { cancelled: number };
}

/** The 202 of a destructive call made without `X-Confirm`: repeat it with the token to execute. */
export interface ConfirmationChallenge {
	confirm: {
		token: string;
		/** ISO-8601. */
		expiresAt: string;
		action: string;
		summary: string;
	};
}

export interface ConfirmRequest {
	action: string;
	object: string;
	/** What will happen, in a sentence a person reads before confirming. */
	summary: string;
}

/** `auth.checkConfirmation` params: the token is checked against the caller in `ctx.meta`. */
export interface CheckConfirmationParams {
	token: string;
	action: string;
	object: string;
}

/** What every view of a job shows at least (`GET /api/jobs/:id`, the REPL's `jobs`). */
export interface JobSummary {
	id: string;
	name: string;
	schedule: unknown;
	status: string;
	nextFireTimes: string[];
}
