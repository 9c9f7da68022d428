/**
 * The dispatcher's action params: each fastest-validator schema beside its TypeScript type.
 * `$$strict: true` refuses unknown fields, so a typo (`priorty`) is an error, not a silent default.
 */
import type { SchemaFor } from "../../lib/actions.ts";
import {
	STRATEGIES,
	TASK_STATUSES,
	type AckParams,
	type Presence,
	type ProgressParams,
	type ResultParams,
	type TaskBody
} from "../../lib/contracts.ts";
import {
	EXIT_CODE,
	MAX_ATTEMPT,
	MAX_PAGE,
	intRule,
	isoDateRule,
	numberRule,
	positiveRule,
	queryIntRule
} from "../../lib/rules.ts";
import { secretsRules } from "./secrets.ts";

const DAY_S = 86_400;

export const idRule = { type: "string", min: 1, max: 128, pattern: /^[A-Za-z0-9_.:-]+$/ };
export const taskIdRule = { type: "string", min: 1, max: 64 };
const labelsRule = [
	{ type: "record", key: { type: "string", min: 1, max: 64 }, value: { type: "string", max: 256 } },
	{ type: "array", items: { type: "string", min: 1, max: 64 }, max: 64 }
];
const secondsRule = (max: number) => positiveRule(max);

export const taskBodyParams = {
	terminalId: { ...idRule, optional: true },
	selector: {
		type: "object",
		optional: true,
		strict: true,
		props: {
			labels: { type: "multi", rules: labelsRule, optional: true },
			strategy: { type: "enum", values: [...STRATEGIES], optional: true },
			key: { type: "string", max: 512, optional: true }
		}
	},
	type: { type: "string", min: 1, max: 128 },
	payload: { type: "any", optional: true },
	priority: intRule({ min: 0, max: 9, optional: true }),
	timeout: secondsRule(7 * DAY_S),
	ackTimeout: secondsRule(DAY_S),
	ttl: secondsRule(30 * DAY_S),
	maxRetries: intRule({ min: 0, max: 100, optional: true }),
	backoff: {
		type: "object",
		optional: true,
		strict: true,
		props: {
			type: { type: "enum", values: ["fixed", "exponential"] },
			delay: intRule({ min: 0, max: DAY_S * 1000 }),
			jitter: numberRule({ min: 0, max: 1, optional: true })
		}
	},
	idempotencyKey: { type: "string", min: 1, max: 255, optional: true },
	waitForTerminal: { type: "boolean", optional: true },
	...secretsRules,
	$$strict: true
} satisfies SchemaFor<TaskBody>;
export type SubmitParams = TaskBody;

/** A schema's fields without its top-level strictness flag, for nesting in an object rule. */
export function fieldsOf<T extends { $$strict?: boolean }>(schema: T): Omit<T, "$$strict"> {
	const { $$strict: _strict, ...fields } = schema;
	return fields;
}

/** The task body's fields without the top-level strictness flag, for nesting. */
const { $$strict: _strict, ...bodyProps } = taskBodyParams;
export const taskBodyProps = bodyProps;

const attemptRule = intRule({ min: 1, max: MAX_ATTEMPT });

export const ackParams = {
	taskId: taskIdRule,
	attempt: attemptRule,
	terminalId: { ...idRule, optional: true },
	$$strict: true
} satisfies SchemaFor<AckActionParams>;
export type AckActionParams = AckParams & { terminalId?: string };

export const progressParams = {
	taskId: taskIdRule,
	attempt: attemptRule,
	percent: numberRule({ min: 0, max: 100, optional: true }),
	log: { type: "string", max: 65_536, optional: true },
	stream: { type: "enum", values: ["stdout", "stderr"], optional: true },
	terminalId: { ...idRule, optional: true },
	$$strict: true
} satisfies SchemaFor<ProgressActionParams>;
export type ProgressActionParams = ProgressParams & { terminalId?: string };

export const resultParams = {
	taskId: taskIdRule,
	attempt: attemptRule,
	status: { type: "enum", values: ["success", "failed"] },
	output: { type: "any", optional: true },
	error: { type: "string", max: 65_536, optional: true, nullable: true },
	exitCode: { ...intRule(EXIT_CODE), optional: true, nullable: true },
	terminalId: { ...idRule, optional: true },
	$$strict: true
} satisfies SchemaFor<ResultActionParams>;
export type ResultActionParams = ResultParams & { terminalId?: string };

export const logsParams = {
	id: taskIdRule,
	after: queryIntRule({ min: 0, max: 1_000_000_000, optional: true }),
	limit: queryIntRule({ min: 1, max: 5000, optional: true }),
	$$strict: true
} satisfies SchemaFor<LogsParams>;
export interface LogsParams {
	id: string;
	after?: number;
	limit?: number;
}

export const pullParams = {
	terminalId: { ...idRule, optional: true },
	limit: queryIntRule({ min: 1, max: 100, optional: true }),
	$$strict: true
} satisfies SchemaFor<PullParams>;
export interface PullParams {
	terminalId?: string;
	limit?: number;
}

export const listParams = {
	status: {
		type: "string",
		optional: true,
		pattern: new RegExp(`^(${TASK_STATUSES.join("|")})(,(${TASK_STATUSES.join("|")}))*$`)
	},
	terminalId: { ...idRule, optional: true },
	type: { type: "string", max: 128, optional: true },
	groupId: { type: "string", max: 64, optional: true },
	since: isoDateRule(true),
	until: isoDateRule(true),
	q: { type: "string", min: 1, max: 128, optional: true },
	page: queryIntRule({ min: 1, max: MAX_PAGE, optional: true }),
	pageSize: queryIntRule({ min: 1, max: 500, optional: true }),
	sort: {
		type: "enum",
		values: ["createdAt", "-createdAt", "priority", "-priority", "updatedAt", "-updatedAt"],
		optional: true
	}
} satisfies SchemaFor<ListParams>;
export interface ListParams {
	status?: string;
	terminalId?: string;
	type?: string;
	groupId?: string;
	/** createdAt at or after (ISO-8601 in the query; a Date once validated). */
	since?: Date;
	/** createdAt before. */
	until?: Date;
	/** Text: a task id's prefix, or a part of the type, terminal id or idempotency key. */
	q?: string;
	page?: number;
	pageSize?: number;
	sort?: string;
}

export const connectedParams = {
	terminalId: "string",
	nodeID: "string",
	sessionId: "string",
	concurrency: "number",
	labels: "object",
	capabilities: { type: "array", items: "string", optional: true },
	transport: { type: "string", max: 32, optional: true },
	connectedAt: "number",
	lastActiveAt: "number"
} satisfies SchemaFor<Presence>;
