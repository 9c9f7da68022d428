/**
 * The audit actions' params: fastest-validator schemas beside their types, and the reading of a
 * list query (times, paging) into what the store takes. Every value goes to the database bound.
 */
import type { ActorType, AuditQuery } from "../../lib/contracts.ts";
import { Errors } from "../../lib/errors.ts";
import type { AuditFilter } from "./store.ts";

/** Rows a page holds at most, and by default. */
export const MAX_PAGE_SIZE = 500;
export const DEFAULT_PAGE_SIZE = 50;
/** Highest page number taken (paging that deep is a search, not a browse). */
const MAX_PAGE = 1_000_000;

const text = (max: number) => ({ type: "string", min: 1, max, optional: true });
/** A query string gives digits; an internal caller, a number. */
const positive = (max: number) => ({
	type: "multi",
	optional: true,
	rules: [
		{ type: "number", integer: true, min: 1, max },
		{ type: "string", pattern: /^[1-9][0-9]{0,6}$/ }
	]
});

export const listParams = {
	actor: text(191),
	action: text(64),
	object: text(255),
	since: text(40),
	until: text(40),
	page: positive(MAX_PAGE),
	pageSize: positive(MAX_PAGE_SIZE),
	$$strict: true
};

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/** Epoch ms of an ISO-8601 time (or of a number of ms); a validation error naming `field` otherwise. */
export function parseTime(field: string, value: string | undefined): number | undefined {
	if (value === undefined) return undefined;
	const ms = /^\d{1,15}$/.test(value) ? Number(value) : ISO_8601.test(value) ? Date.parse(value) : NaN;
	if (!Number.isFinite(ms))
		throw Errors.validation(`'${field}' must be an ISO-8601 time (2026-01-31T12:00:00Z), not '${value.slice(0, 40)}'`, [
			{ type: "date", field, actual: value.slice(0, 40), message: `The '${field}' field must be an ISO-8601 time` }
		]);
	return ms;
}

function bounded(field: string, value: number | string | undefined, fallback: number, max: number): number {
	if (value === undefined) return fallback;
	const n = Number(value);
	if (n > max)
		throw Errors.validation(`'${field}' must be at most ${max}`, [
			{ type: "numberMax", field, actual: n, expected: max, message: `The '${field}' field must be at most ${max}` }
		]);
	return n;
}

/** The store's filter and page of a list query. */
export function readQuery(params: AuditQuery): { filter: AuditFilter; offset: number; limit: number } {
	const since = parseTime("since", params.since);
	const until = parseTime("until", params.until);
	if (since !== undefined && until !== undefined && until < since)
		throw Errors.validation("'until' is before 'since'", [
			{ type: "date", field: "until", message: "The 'until' field must not be before 'since'" }
		]);
	const limit = bounded("pageSize", params.pageSize, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
	const page = bounded("page", params.page, 1, MAX_PAGE);
	const filter: AuditFilter = { actor: params.actor, action: params.action, object: params.object, since, until };
	return { filter, offset: (page - 1) * limit, limit };
}

const ACTOR_TYPES: ActorType[] = ["user", "token", "terminal", "anonymous", "system"];

/** One entry of `audit.record`, as the middleware builds it (lib/audit/entry.ts). */
const entryRule = {
	type: "object",
	strict: true,
	props: {
		at: { type: "number", integer: true, min: 0 },
		actor: { type: "string", max: 191 },
		actorType: { type: "enum", values: ACTOR_TYPES },
		action: { type: "string", min: 1, max: 64 },
		object: { type: "string", max: 255, nullable: true },
		address: { type: "string", max: 64, nullable: true },
		userAgent: { type: "string", max: 255, nullable: true },
		outcome: { type: "string", min: 1, max: 64 },
		changes: { type: "object", nullable: true }
	}
};

export const recordParams = {
	entries: { type: "array", min: 1, max: 1000, items: entryRule },
	$$strict: true
};
