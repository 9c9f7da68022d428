/**
 * The alert service's settings, the shape of its `this`, and its methods, spread into the service
 * by alert.service.ts.
 */
import type { Context, Service, ServiceSettingSchema } from "moleculer";
import type { DbMixinSettings } from "../../mixins/db.mixin.ts";
import type { AlertRuleRow, ChannelRow } from "../../models/alert.model.ts";
import type { AlertRuleView } from "../../lib/contracts.ts";
import { Errors } from "../../lib/errors.ts";
import type { AlertStore } from "./store.ts";
import type { Notifier } from "./notifier.ts";
import type { DefaultChannels, Evaluator } from "./evaluator.ts";
import type { ChannelConfigs } from "./channel-config.ts";
import type { KeyringMethods, KeyringSettings, KeyringVars } from "../../mixins/keyring.mixin.ts";

export interface AlertSettings extends ServiceSettingSchema, DbMixinSettings, Partial<KeyringSettings> {
	/** Tries per notification. @defaultValue 3 */
	notifyAttempts: number;
	/** Wait before the first retry of a notification, ms, doubled before each next one. @defaultValue 1000 */
	notifyBackoff: number;
	/** Whom a rule with no channels notifies: "all" enabled channels, or "none". @defaultValue "all" */
	defaultChannels: DefaultChannels;
	/** Alerts per page when not asked. @defaultValue 50 */
	pageSize: number;
}

export interface AlertVars extends KeyringVars {
	store: AlertStore;
	notifier: Notifier;
	evaluator: Evaluator;
	configs: ChannelConfigs;
	/** The enabled rules, until a rule changes (here or on another replica). */
	activeCache: Promise<AlertRuleView[]> | null;
}
export interface AlertMethods extends KeyringMethods {
	mustGetRule(id: string): Promise<AlertRuleRow>;
	mustGetChannel(id: string): Promise<ChannelRow>;
	rulesChanged(ctx: Context): Promise<void>;
}
export type AlertThis = Service<AlertSettings> & AlertVars & AlertMethods;

/** Bound to the service by Moleculer: `this` is the service. */
export const methods = {
	async mustGetRule(this: AlertThis, id: string) {
		const rule = await this.store.rule(id);
		if (!rule) throw Errors.ruleNotFound(id);
		return rule;
	},
	async mustGetChannel(this: AlertThis, id: string) {
		const channel = await this.store.channel(id);
		if (!channel) throw Errors.channelNotFound(id);
		return channel;
	},
	async rulesChanged(this: AlertThis, ctx: Context) {
		this.activeCache = null;
		await ctx.broadcast("alert.rulesChanged", {});
	}
};
