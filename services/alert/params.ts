/**
 * The alert service's action params: each fastest-validator schema beside its TypeScript type.
 * `$$strict` refuses unknown fields (422 VALIDATION_ERROR naming them). A channel's `config` is
 * checked by its channel type (channels/), which names `config.<field>` the same way.
 */
import { MAX_PAGE, isoDateRule, queryBoolRule, queryIntRule } from "../../lib/rules.ts";
import {
	ALERT_STATUSES,
	CHANNEL_TYPES,
	CONDITIONS,
	SEVERITIES,
	SIGNAL_NAMES,
	type AlertRuleBody,
	type AlertStatus,
	type ChannelBody,
	type EvaluateParams,
	type Severity,
	type SilenceBody
} from "../../lib/contracts.ts";
import type { SchemaFor } from "../../lib/actions.ts";

/** Most labels a matcher or label map may hold. */
export const MAX_LABELS = 32;

export const idRule = { type: "string", min: 1, max: 64, pattern: /^[A-Za-z0-9_.:-]+$/ };

/** A label map: at most MAX_LABELS keys, keys and values at most 256 characters. */
function labelMap(options: { optional?: boolean; min?: number } = {}) {
	const min = options.min ?? 0;
	return {
		type: "record",
		key: { type: "string", min: 1, max: 256 },
		value: { type: "string", max: 256 },
		optional: options.optional ?? false,
		custom: (value: unknown, errors: { type: string; expected?: unknown; actual?: unknown }[]) => {
			const count = value && typeof value === "object" ? Object.keys(value).length : 0;
			if (count > MAX_LABELS) errors.push({ type: "labelsMax", expected: MAX_LABELS, actual: count });
			if (count < min) errors.push({ type: "labelsMin", expected: min, actual: count });
			return value;
		},
		messages: {
			labelsMax: "The '{field}' field must hold at most {expected} labels.",
			labelsMin: "The '{field}' field must hold at least {expected} label(s)."
		}
	};
}

const channelList = { type: "array", items: idRule, max: 50, unique: true };

const ruleFields = {
	name: { type: "string", min: 1, max: 191, trim: true },
	enabled: { type: "boolean", optional: true },
	severity: { type: "enum", values: [...SEVERITIES], optional: true },
	metric: { type: "enum", values: SIGNAL_NAMES },
	condition: { type: "enum", values: [...CONDITIONS] },
	threshold: { type: "number", finite: true },
	window: { type: "number", integer: true, min: 1, max: 86_400, optional: true },
	for: { type: "number", integer: true, min: 0, max: 86_400, optional: true },
	matchers: labelMap({ optional: true }),
	labels: labelMap({ optional: true }),
	channels: { ...channelList, optional: true },
	repeatInterval: { type: "number", integer: true, min: 0, max: 604_800, optional: true },
	escalation: {
		type: "object",
		strict: true,
		optional: true,
		nullable: true,
		props: {
			after: { type: "number", integer: true, min: 1, max: 604_800 },
			channels: { ...channelList, min: 1 }
		}
	}
} satisfies SchemaFor<AlertRuleBody>;

export const createRuleParams = { ...ruleFields, $$strict: true };

export type UpdateRuleParams = Partial<AlertRuleBody> & { id: string };
/** PUT takes the same fields; those left out keep their values. */
export const updateRuleParams = {
	id: idRule,
	...Object.fromEntries(Object.entries(ruleFields).map(([k, rule]) => [k, { ...rule, optional: true }])),
	$$strict: true
};

const channelFields = {
	name: { type: "string", min: 1, max: 191, trim: true },
	type: { type: "enum", values: [...CHANNEL_TYPES] },
	// Checked by the channel type (channels/*.ts), whose rules differ by type.
	config: { type: "object" },
	enabled: { type: "boolean", optional: true }
} satisfies SchemaFor<ChannelBody>;

export const createChannelParams = { ...channelFields, $$strict: true };

export type UpdateChannelParams = Partial<ChannelBody> & { id: string };
export const updateChannelParams = {
	id: idRule,
	...Object.fromEntries(Object.entries(channelFields).map(([k, rule]) => [k, { ...rule, optional: true }])),
	$$strict: true
};

export const byIdParams = { id: idRule, $$strict: true };

export interface ListAlertsParams {
	status?: AlertStatus;
	ruleId?: string;
	severity?: Severity;
	since?: Date;
	until?: Date;
	page?: number;
	pageSize?: number;
}
export const listAlertsParams = {
	status: { type: "enum", values: [...ALERT_STATUSES], optional: true },
	ruleId: { ...idRule, optional: true },
	severity: { type: "enum", values: [...SEVERITIES], optional: true },
	since: isoDateRule(true),
	until: isoDateRule(true),
	page: queryIntRule({ min: 1, max: MAX_PAGE, optional: true }),
	pageSize: queryIntRule({ min: 1, max: 500, optional: true }),
	$$strict: true
} satisfies SchemaFor<ListAlertsParams>;

export interface SilenceParams extends Omit<SilenceBody, "endsAt"> {
	endsAt: Date;
}
export const createSilenceParams = {
	matchers: labelMap({ min: 1 }),
	endsAt: isoDateRule(),
	comment: { type: "string", max: 1024, optional: true },
	$$strict: true
} satisfies SchemaFor<SilenceParams>;

export const listSilencesParams = {
	active: queryBoolRule(),
	$$strict: true
};

export const evaluateParams = {
	ruleId: idRule,
	at: { type: "number", integer: true, positive: true },
	active: {
		type: "array",
		max: 10_000,
		items: {
			type: "object",
			strict: "remove",
			props: {
				fingerprint: { type: "string", max: 512 },
				labels: labelMap(),
				value: { type: "number" },
				summary: { type: "string", max: 1024 }
			}
		}
	},
	$$strict: true
} satisfies SchemaFor<EvaluateParams>;
