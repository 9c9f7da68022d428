/**
 * `alert.evaluate`: the lifecycle (lifecycle.ts) applied to each series the monitor found active
 * and to each open alert of the rule it did not. Each decision is written with a compare-and-set
 * (store.ts) and only its winner notifies, so two evaluations of the same rule at once — two
 * monitor replicas, a handover, a retried call — open one alert and send one notice. State lives
 * in the database only: a restarted node reads it back and does not notify again.
 */
import type { AlertRow, AlertRuleRow, ChannelRow } from "../../models/alert.model.ts";
import type {
	AlertChangedEvent,
	Escalation,
	EvaluateParams,
	Labels,
	NotificationKind,
	Observation
} from "../../lib/contracts.ts";
import { labelsMatch } from "../../lib/labels.ts";
import { uuidv7 } from "../../lib/ids.ts";
import { decide, type Decision } from "./lifecycle.ts";
import type { Notifier } from "./notifier.ts";
import { isSilenced, silenceLabels } from "./silences.ts";
import type { AlertStore } from "./store.ts";

export type DefaultChannels = "all" | "none";

export interface EvaluatorOptions {
	/** Whom a rule without channels notifies: every enabled channel ("all") or no one. @defaultValue "all" */
	defaultChannels: DefaultChannels;
	/** Told of each alert that fired or resolved (the winner of the write only): `alert.changed`. */
	announce?: (event: AlertChangedEvent) => void;
}

export interface EvaluateResult {
	/** Alerts of the rule firing after this evaluation. */
	firing: number;
	/** Notifications recorded by this evaluation (sent in the background, or silenced). */
	notified: number;
}

interface RuleContext {
	row: AlertRuleRow;
	labels: Labels;
	channels: string[];
	escalation: Escalation | null;
}

export class Evaluator {
	private readonly store: AlertStore;
	private readonly notifier: Notifier;
	private readonly options: EvaluatorOptions;

	constructor(store: AlertStore, notifier: Notifier, options: EvaluatorOptions) {
		this.store = store;
		this.notifier = notifier;
		this.options = options;
	}

	/** @param rule the rule, read fresh; a disabled rule changes nothing */
	async evaluate(rule: AlertRuleRow, params: EvaluateParams): Promise<EvaluateResult> {
		const at = params.at;
		const context: RuleContext = {
			row: rule,
			labels: JSON.parse(rule.labels) as Labels,
			channels: JSON.parse(rule.channels) as string[],
			escalation: rule.escalation ? (JSON.parse(rule.escalation) as Escalation) : null
		};
		const open = await this.store.openAlerts(rule.id);
		if (!rule.enabled) return { firing: open.filter(a => a.status === "firing").length, notified: 0 };
		const matchers = JSON.parse(rule.matchers) as Labels;
		const active = new Map<string, Observation>();
		for (const observation of params.active)
			if (labelsMatch(matchers, observation.labels)) active.set(observation.fingerprint, observation);
		const byFingerprint = new Map(open.map(alert => [alert.fingerprint, alert]));

		let notified = 0;
		for (const observation of active.values()) {
			const alert = byFingerprint.get(observation.fingerprint) ?? null;
			notified += await this.apply(context, alert, observation, decide(alert, true, timing(context), at), at);
		}
		for (const alert of open) {
			if (active.has(alert.fingerprint)) continue;
			notified += await this.apply(context, alert, null, decide(alert, false, timing(context), at), at);
		}
		const firing = (await this.store.openAlerts(rule.id)).filter(a => a.status === "firing").length;
		return { firing, notified };
	}

	/** Writes the decision; the notices it sends, counted, when this caller won the write. */
	private async apply(
		rule: RuleContext,
		alert: AlertRow | null,
		observation: Observation | null,
		decision: Decision,
		at: number
	): Promise<number> {
		switch (decision.kind) {
			case "nothing":
				return 0;
			case "create": {
				const row = newAlert(rule, observation!, at, decision.fire);
				if (!(await this.store.insertAlert(row))) return 0;
				if (decision.fire) this.announce(row, "firing", at);
				return decision.fire ? this.send(rule, row, "firing", rule.channels, at) : 0;
			}
			case "fire": {
				const { value, summary } = observation!;
				if (!(await this.store.fire(alert!.id, at, value, summary))) return 0;
				const row = { ...alert!, status: "firing" as const, firingAt: at, lastNotifiedAt: at, value, summary };
				this.announce(row, "firing", at);
				return this.send(rule, { ...row, notifyCount: alert!.notifyCount + 1 }, "firing", rule.channels, at);
			}
			case "remind": {
				const { value, summary } = observation!;
				if (!(await this.store.remind(alert!.id, alert!.notifyCount, at, value, summary))) return 0;
				const row = { ...alert!, lastNotifiedAt: at, notifyCount: alert!.notifyCount + 1, value, summary };
				return this.send(rule, row, "repeat", rule.channels, at);
			}
			case "escalate": {
				if (!(await this.store.escalate(alert!.id, at))) return 0;
				return this.send(rule, { ...alert!, escalatedAt: at }, "escalation", rule.escalation?.channels ?? [], at, true);
			}
			case "resolve": {
				if (!(await this.store.resolve(alert!.id, alert!.status, at))) return 0;
				this.announce(alert!, "resolved", at);
				if (!decision.notify) return 0;
				const told = await this.store.toldChannels(alert!.id);
				const row = { ...alert!, status: "resolved" as const, resolvedAt: at, openKey: null };
				return this.send(rule, row, "resolved", told, at, true);
			}
		}
	}

	private announce(alert: AlertRow, status: AlertChangedEvent["status"], at: number): void {
		this.options.announce?.({
			id: alert.id,
			ruleId: alert.ruleId,
			status,
			severity: alert.severity,
			summary: alert.summary,
			at: new Date(at).toISOString()
		});
	}

	/**
	 * Records and starts the notices of `kind` to `channelIds` — or, for a rule that names none,
	 * to every enabled channel when `defaultChannels` is "all". `exact`: the ids as given, never
	 * the default (escalation channels; the channels told of a firing, for its resolve).
	 */
	private async send(
		rule: RuleContext,
		alert: AlertRow,
		kind: NotificationKind,
		channelIds: string[],
		at: number,
		exact = false
	): Promise<number> {
		const all = await this.store.channels();
		const useDefault = !exact && channelIds.length === 0 && this.options.defaultChannels === "all";
		const wanted = new Set(channelIds);
		const channels: ChannelRow[] = all.filter(c => c.enabled && (useDefault || wanted.has(c.id)));
		if (channels.length === 0) return 0;
		const labels = silenceLabels(
			{ labels: JSON.parse(alert.labels) as Labels, severity: alert.severity },
			{
				id: rule.row.id,
				name: rule.row.name,
				labels: rule.labels
			}
		);
		const silenced = isSilenced(
			(await this.store.activeSilences(at)).map(s => ({ matchers: JSON.parse(s.matchers) as Labels, endsAt: s.endsAt })),
			labels,
			at
		);
		return this.notifier.notify(alert, kind, channels, silenced, at);
	}
}

function timing(rule: RuleContext) {
	return { for: rule.row.for, repeatInterval: rule.row.repeatInterval, escalation: rule.escalation };
}

function newAlert(rule: RuleContext, observation: Observation, at: number, fire: boolean): AlertRow {
	return {
		id: uuidv7(at),
		ruleId: rule.row.id,
		ruleName: rule.row.name,
		status: fire ? "firing" : "pending",
		severity: rule.row.severity,
		labels: JSON.stringify({ ...observation.labels, ...rule.labels }),
		fingerprint: observation.fingerprint,
		value: observation.value,
		summary: observation.summary,
		startedAt: at,
		firingAt: fire ? at : null,
		resolvedAt: null,
		acknowledgedAt: null,
		acknowledgedBy: null,
		lastNotifiedAt: fire ? at : null,
		notifyCount: fire ? 1 : 0,
		escalatedAt: null,
		openKey: `${rule.row.id}|${observation.fingerprint}`
	};
}
