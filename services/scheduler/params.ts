/** The scheduler's action params: fastest-validator schemas beside their types. */
import type { TaskBody } from "../../lib/contracts.ts";
import type { MisfirePolicy, OverlapPolicy } from "../../models/job.model.ts";
import { taskBodyParams } from "../dispatcher/params.ts";
import { MAX_PAGE, positiveRule, queryBoolRule, queryIntRule } from "../../lib/rules.ts";

// A job's task is a task body without an idempotency key: each fire gets its own.
const { $$strict: _strict, idempotencyKey: _key, ...taskProps } = taskBodyParams;

const DAY_S = 86_400;
/** The longest `every` or `delayAfterFinish`: a leap year, in ms. */
const MAX_INTERVAL_MS = 366 * DAY_S * 1000;

const jobFields = {
	name: { type: "string", min: 1, max: 255 },
	// Its shape is checked by parseSchedule, whose messages say what is wrong with an expression;
	// here only each field's type and size (an interval past a year fires never, and 1e308 ms
	// would be no date at all).
	schedule: {
		type: "object",
		props: {
			cron: { type: "string", max: 256, optional: true },
			timezone: { type: "string", max: 64, optional: true },
			every: { type: "number", max: MAX_INTERVAL_MS, optional: true },
			delayAfterFinish: { type: "number", max: MAX_INTERVAL_MS, optional: true },
			at: { type: "string", max: 64, optional: true }
		}
	},
	task: { type: "object", strict: true, props: taskProps },
	misfirePolicy: { type: "enum", values: ["skip", "fire_once", "catch_up"], optional: true },
	overlapPolicy: { type: "enum", values: ["allow", "forbid", "replace"], optional: true },
	catchUpWindow: positiveRule(30 * DAY_S),
	startAt: { type: "string", max: 64, optional: true, nullable: true },
	endAt: { type: "string", max: 64, optional: true, nullable: true },
	enabled: { type: "boolean", optional: true }
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

export const idParams = { id: { type: "string", min: 1, max: 64 }, $$strict: true };

/** Orders of the job list: newest first unless asked; ties broken by id. */
const LIST_SORTS = ["createdAt", "-createdAt", "updatedAt", "-updatedAt", "name", "-name"] as const;

export const listParams = {
	enabled: queryBoolRule(),
	name: { type: "string", max: 255, optional: true },
	/** Part of the name, any case. */
	search: { type: "string", max: 255, optional: true },
	sort: { type: "enum", values: LIST_SORTS, optional: true },
	page: queryIntRule({ min: 1, max: MAX_PAGE, optional: true }),
	pageSize: queryIntRule({ min: 1, max: 500, optional: true })
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
	page: queryIntRule({ min: 1, max: MAX_PAGE, optional: true }),
	pageSize: queryIntRule({ min: 1, max: 500, optional: true })
};

/** `POST /api/jobs/preview`: a schedule (checked by parseSchedule) and the bounds of a job. */
export const previewParams = {
	schedule: jobFields.schedule,
	startAt: jobFields.startAt,
	endAt: jobFields.endAt,
	count: { type: "number", integer: true, min: 1, max: 50, optional: true },
	$$strict: true
};
