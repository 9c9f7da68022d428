/** The scheduler's action params: fastest-validator schemas beside their types. */
import type { TaskBody } from "../../lib/contracts.ts";
import type { MisfirePolicy, OverlapPolicy } from "../../models/job.model.ts";
import { taskBodyParams } from "../dispatcher/params.ts";

// A job's task is a task body without an idempotency key: each fire gets its own.
const { $$strict: _strict, idempotencyKey: _key, ...taskProps } = taskBodyParams;

const DAY_S = 86_400;

const jobFields = {
	name: { type: "string", min: 1, max: 255 },
	// Checked by parseSchedule, whose messages say what is wrong with an expression.
	schedule: { type: "object" },
	task: { type: "object", strict: true, props: taskProps },
	misfirePolicy: { type: "enum", values: ["skip", "fire_once", "catch_up"], optional: true },
	overlapPolicy: { type: "enum", values: ["allow", "forbid", "replace"], optional: true },
	catchUpWindow: { type: "number", positive: true, max: 30 * DAY_S, optional: true, convert: true },
	startAt: { type: "string", optional: true, nullable: true },
	endAt: { type: "string", optional: true, nullable: true },
	enabled: { type: "boolean", optional: true, convert: true }
};

export const createParams = { ...jobFields, $$strict: true };

/** PUT takes the same fields; those left out keep their values. */
export const updateParams = {
	id: { type: "string", min: 1, max: 64 },
	...Object.fromEntries(Object.entries(jobFields).map(([k, rule]) => [k, { ...rule, optional: true }])),
	$$strict: true
};

export interface JobBody {
	name: string;
	schedule: unknown;
	task: TaskBody;
	misfirePolicy?: MisfirePolicy;
	overlapPolicy?: OverlapPolicy;
	/** Seconds. */
	catchUpWindow?: number;
	startAt?: string | null;
	endAt?: string | null;
	enabled?: boolean;
}

export const idParams = { id: { type: "string", min: 1, max: 64 } };

/** Orders of the job list: newest first unless asked; ties broken by id. */
const LIST_SORTS = ["createdAt", "-createdAt", "updatedAt", "-updatedAt", "name", "-name"] as const;

export const listParams = {
	enabled: { type: "boolean", optional: true, convert: true },
	name: { type: "string", max: 255, optional: true },
	/** Part of the name, any case. */
	search: { type: "string", max: 255, optional: true },
	sort: { type: "enum", values: LIST_SORTS, optional: true },
	page: { type: "number", integer: true, min: 1, optional: true, convert: true },
	pageSize: { type: "number", integer: true, min: 1, max: 500, optional: true, convert: true }
};

export interface ListParams {
	enabled?: boolean;
	name?: string;
	search?: string;
	sort?: (typeof LIST_SORTS)[number];
	page?: number;
	pageSize?: number;
}

export const historyParams = {
	id: { type: "string", min: 1, max: 64 },
	outcome: {
		type: "enum",
		values: ["CLAIMED", "FIRED", "CAUGHT_UP", "SKIPPED_OVERLAP", "MISSED", "NO_TERMINAL", "PAUSED"],
		optional: true
	},
	page: { type: "number", integer: true, min: 1, optional: true, convert: true },
	pageSize: { type: "number", integer: true, min: 1, max: 500, optional: true, convert: true }
};
