/**
 * A task body becomes a row: what the validator cannot check (target xor selector, the hash key,
 * the payload's size), its secrets sealed, the defaults filled in, and the comparison that tells a repeated submit
 * from a different body sent under the same idempotency key.
 */
import { Errors } from "../../lib/errors.ts";
import type { Principal, Selector, StrategyName } from "../../lib/contracts.ts";
import type { Keyring } from "../../lib/keyring.ts";
import { normalizeLabels } from "../../lib/labels.ts";
import { checkSecrets, sameSecrets, sealSecrets } from "../../lib/task-secrets.ts";
import type { TaskRow } from "../../models/task.model.ts";
import type { SubmitParams } from "./params.ts";
import type { DispatcherSettings } from "./settings.ts";

export interface CheckedBody {
	/** The payload as JSON text, its size checked, its sensitive paths "***". */
	payload: string | null;
	strategy: StrategyName;
	/** The sealed secrets and sensitive values (lib/task-secrets.ts), or null. */
	secrets: string | null;
}

/** The checks of a body beyond its schema, and its secrets sealed; throws the caller's mistake. */
export function checkBody(body: SubmitParams, settings: DispatcherSettings, keyring: Keyring): CheckedBody {
	if (Boolean(body.terminalId) === Boolean(body.selector))
		throw Errors.validation("Give either 'terminalId' or 'selector' (and not both)", [
			{ field: "terminalId", message: "Give either 'terminalId' or 'selector' (and not both)" }
		]);
	const strategy = body.selector?.strategy ?? "round_robin";
	if (strategy === "consistent_hash" && !body.selector?.key)
		throw Errors.validation("'selector.key' is required by strategy 'consistent_hash'", [
			{ field: "selector.key", message: "'selector.key' is required by strategy 'consistent_hash'" }
		]);
	const bytes = body.payload === undefined ? 0 : Buffer.byteLength(JSON.stringify(body.payload));
	if (bytes > settings.maxPayloadBytes) throw Errors.payloadTooLarge(bytes, settings.maxPayloadBytes);
	checkSecrets(body);
	const sealed = sealSecrets(body, keyring);
	const payload = sealed.payload === undefined ? null : JSON.stringify(sealed.payload);
	return { payload, strategy, secrets: sealed.envelope };
}

/** Who submitted: a user's name, or the terminal that did. */
function creator(principal: Principal | undefined): string | null {
	if (!principal) return null;
	return principal.kind === "user" ? principal.username : `terminal:${principal.terminalId}`;
}

/** A new PENDING row for a task body (no id yet). */
export function rowFor(
	body: SubmitParams,
	checked: CheckedBody,
	settings: DispatcherSettings,
	principal: Principal | undefined,
	now: number
): TaskRow {
	const defaults = settings.defaults;
	const ttlMs = Math.round((body.ttl ?? defaults.ttl) * 1000);
	const selector: Selector | null = body.selector
		? { ...body.selector, labels: normalizeLabels(body.selector.labels), strategy: checked.strategy }
		: null;
	return {
		id: "",
		status: "PENDING",
		type: body.type,
		payload: checked.payload,
		target: body.terminalId ?? null,
		selector: selector ? JSON.stringify({ ...selector, labels: body.selector?.labels ?? {} }) : null,
		terminalId: null,
		priority: body.priority ?? defaults.priority,
		timeoutMs: Math.round((body.timeout ?? defaults.timeout) * 1000),
		ackTimeoutMs: Math.round((body.ackTimeout ?? defaults.ackTimeout) * 1000),
		ttlMs,
		maxRetries: body.maxRetries ?? defaults.maxRetries,
		retries: 0,
		backoff: body.backoff ? JSON.stringify(body.backoff) : null,
		attempt: 0,
		deliveries: 0,
		idempotencyKey: body.idempotencyKey ?? null,
		groupId: null,
		shardIndex: null,
		shardTotal: null,
		output: null,
		error: null,
		exitCode: null,
		progress: null,
		createdBy: creator(principal),
		createdAt: now,
		updatedAt: now,
		deliveredAt: null,
		startedAt: null,
		finishedAt: null,
		expiresAt: now + ttlMs,
		notBefore: null,
		deadlineAt: null,
		secrets: checked.secrets
	};
}

/** JSON text with object keys sorted, so that two bodies equal in value compare equal as text. */
function canonical(text: string | null): string | null {
	if (text === null) return null;
	return JSON.stringify(JSON.parse(text), (_key, value: unknown) =>
		value && typeof value === "object" && !Array.isArray(value)
			? Object.fromEntries(
					Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
				)
			: value
	);
}

/** Fields a task body decides; an earlier task of the same key must agree on all of them. */
const BODY_FIELDS = ["type", "priority", "timeoutMs", "ackTimeoutMs", "ttlMs", "maxRetries"] as const;

/**
 * Whether `earlier` (the task an idempotency key names) came from the same body as `fresh`. A
 * fan-out's tasks each carry their own target, so their selector is what is compared.
 */
export function sameBody(earlier: TaskRow, fresh: TaskRow, keyring: Keyring): boolean {
	for (const field of BODY_FIELDS)
		if (Number(earlier[field]) !== Number(fresh[field]) && earlier[field] !== fresh[field]) return false;
	if (earlier.groupId === null && earlier.target !== fresh.target) return false;
	return (
		canonical(earlier.payload) === canonical(fresh.payload) &&
		canonical(earlier.selector) === canonical(fresh.selector) &&
		canonical(earlier.backoff) === canonical(fresh.backoff) &&
		sameSecrets(earlier.secrets ?? null, fresh.secrets ?? null, keyring)
	);
}
