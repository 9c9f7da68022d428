/**
 * alert: alert rules (the built-in ones seeded on start), alerts and their history, notification
 * channels (webhook, email, SMS), silences; and `alert.evaluate`, which the monitor calls for
 * each rule every tick and which decides and sends what is due. The modules under alert/ hold
 * the lifecycle (pure), the SQL, the channel family, the sender and the views.
 */
import { AlertMetrics } from "../lib/metrics/alerts.ts";
import type { Context, ServiceSchema } from "moleculer";
import { DbMixin } from "../mixins/db.mixin.ts";
import { defineAlertRule, type SilenceRow } from "../models/alert.model.ts";
import { methods, type AlertMethods, type AlertSettings, type AlertThis, type AlertVars } from "./alert/methods.ts";
import type { Sequelize } from "sequelize";
import type {
	AlertChangedEvent,
	AlertRuleBody,
	AlertRuleView,
	ChannelBody,
	EvaluateParams,
	Labels,
	TernMeta
} from "../lib/contracts.ts";
import { Errors } from "../lib/errors.ts";
import { requireUser } from "../lib/access.ts";
import { uuidv7 } from "../lib/ids.ts";
import { KeyringMixin } from "../mixins/keyring.mixin.ts";
import {
	byIdParams,
	createChannelParams,
	createRuleParams,
	createSilenceParams,
	evaluateParams,
	listAlertsParams,
	listSilencesParams,
	updateChannelParams,
	updateRuleParams,
	type ListAlertsParams,
	type SilenceParams,
	type UpdateChannelParams,
	type UpdateRuleParams
} from "./alert/params.ts";
import { AlertStore, isDuplicate } from "./alert/store.ts";
import { Notifier } from "./alert/notifier.ts";
import { Evaluator } from "./alert/evaluator.ts";
import { builtinRows } from "./alert/builtin.ts";
import { checkChannelIds, newRuleRow, ruleChanges, rulesNaming } from "./alert/rules.ts";
import { CHANNEL_CONTEXT, ChannelConfigs, channelResealTarget } from "./alert/channel-config.ts";
import { testMessage } from "./alert/templates.ts";
import { toAlertView, toNotificationView, toRuleView, toSilenceView } from "./alert/views.ts";

export type { AlertSettings } from "./alert/methods.ts";

const usernameOf = (ctx: Context<unknown, TernMeta>) =>
	ctx.meta.principal?.kind === "user" ? ctx.meta.principal.username : null;

const AlertService: ServiceSchema<AlertSettings, AlertMethods, AlertVars> = {
	name: "alert",
	mixins: [DbMixin(defineAlertRule), KeyringMixin()],
	settings: {
		notifyAttempts: 3,
		notifyBackoff: 1000,
		defaultChannels: "all",
		pageSize: 50,
		idField: "id",
		dbUri: ""
	},
	actions: {
		// moleculer-db's generic reads stay off: their params would merge into same-named actions.
		find: false,
		count: false,
		list: false,
		get: false,

		/** `GET /api/alert-rules`: every rule, built-in ones first. */
		listRules: {
			async handler(this: AlertThis, ctx: Context<unknown, TernMeta>) {
				requireUser(ctx, "viewer");
				return (await this.store.rules()).map(toRuleView);
			}
		},

		/** `GET /api/alert-rules/:id` */
		getRule: {
			params: byIdParams,
			async handler(this: AlertThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "viewer");
				return toRuleView(await this.mustGetRule(ctx.params.id));
			}
		},

		/** `POST /api/alert-rules` (admin) → 201 the rule. */
		createRule: {
			params: createRuleParams,
			async handler(this: AlertThis, ctx: Context<AlertRuleBody, TernMeta>) {
				requireUser(ctx, "admin");
				checkChannelIds(ctx.params, await this.store.channels());
				const row = newRuleRow(ctx.params, Date.now());
				try {
					await this.store.insertRule(row);
				} catch (err) {
					if (isDuplicate(err)) throw Errors.ruleExists(row.name);
					throw err;
				}
				await this.rulesChanged(ctx);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/alert-rules/${row.id}`;
				return toRuleView(row);
			}
		},

		/** `PUT /api/alert-rules/:id` (admin): the fields given change. Disabling resolves its open alerts, quietly. */
		updateRule: {
			params: updateRuleParams,
			async handler(this: AlertThis, ctx: Context<UpdateRuleParams, TernMeta>) {
				requireUser(ctx, "admin");
				const { id, ...body } = ctx.params;
				const base = await this.mustGetRule(id);
				checkChannelIds(body, await this.store.channels());
				const now = Date.now();
				try {
					if (!(await this.store.updateRule(id, ruleChanges(body, base, now)))) throw Errors.ruleNotFound(id);
				} catch (err) {
					if (isDuplicate(err)) throw Errors.ruleExists(String(body.name));
					throw err;
				}
				if (body.enabled === false) await this.store.resolveAllOf(id, now);
				await this.rulesChanged(ctx);
				return toRuleView(await this.mustGetRule(id));
			}
		},

		/** `DELETE /api/alert-rules/:id` (admin) → `{ id, deleted: true }`; a built-in rule is 409 BUILTIN_RULE. */
		removeRule: {
			params: byIdParams,
			async handler(this: AlertThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "admin");
				const rule = await this.mustGetRule(ctx.params.id);
				if (rule.builtin) throw Errors.builtinRule(rule.id, "it cannot be deleted");
				await this.store.deleteRule(rule.id);
				await this.store.resolveAllOf(rule.id, Date.now());
				await this.rulesChanged(ctx);
				return { id: rule.id, deleted: true };
			}
		},

		/** `GET /api/alert-channels`: secrets as "***". */
		listChannels: {
			async handler(this: AlertThis, ctx: Context<unknown, TernMeta>) {
				requireUser(ctx, "viewer");
				return (await this.store.channels()).map(row => this.configs.view(row));
			}
		},

		/** `GET /api/alert-channels/:id` */
		getChannel: {
			params: byIdParams,
			async handler(this: AlertThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "viewer");
				return this.configs.view(await this.mustGetChannel(ctx.params.id));
			}
		},

		/** `POST /api/alert-channels` (admin) `{ name, type, config, enabled? }` → 201 the channel. */
		createChannel: {
			params: createChannelParams,
			async handler(this: AlertThis, ctx: Context<ChannelBody, TernMeta>) {
				requireUser(ctx, "admin");
				const row = this.configs.newRow(ctx.params, Date.now());
				try {
					await this.store.insertChannel(row);
				} catch (err) {
					if (isDuplicate(err)) throw Errors.channelExists(row.name);
					throw err;
				}
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/alert-channels/${row.id}`;
				return this.configs.view(row);
			}
		},

		/** `PUT /api/alert-channels/:id` (admin): a secret sent back as "***" keeps the stored one. */
		updateChannel: {
			params: updateChannelParams,
			async handler(this: AlertThis, ctx: Context<UpdateChannelParams, TernMeta>) {
				requireUser(ctx, "admin");
				const { id, ...body } = ctx.params;
				const base = await this.mustGetChannel(id);
				try {
					await this.store.updateChannel(id, this.configs.changes(body, base, Date.now()));
				} catch (err) {
					if (isDuplicate(err)) throw Errors.channelExists(String(body.name));
					throw err;
				}
				return this.configs.view(await this.mustGetChannel(id));
			}
		},

		/** `DELETE /api/alert-channels/:id` (admin) → `{ id, deleted: true }`; 409 CHANNEL_IN_USE while a rule names it. */
		removeChannel: {
			params: byIdParams,
			async handler(this: AlertThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "admin");
				const channel = await this.mustGetChannel(ctx.params.id);
				const users = rulesNaming(await this.store.rules(), channel.id);
				if (users.length > 0) throw Errors.channelInUse(channel.id, users);
				await this.store.deleteChannel(channel.id);
				return { id: channel.id, deleted: true };
			}
		},

		/** `POST /api/alert-channels/:id/test` (admin): a "test" notice sent now → `{ ok, status, attempts, error }`. */
		testChannel: {
			params: byIdParams,
			async handler(this: AlertThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "admin");
				const channel = await this.mustGetChannel(ctx.params.id);
				return this.notifier.sendNow(channel, testMessage(channel.name, Date.now()));
			}
		},

		/** `GET /api/alerts` → `{ rows, total, page, pageSize }`, newest first. */
		listAlerts: {
			params: listAlertsParams,
			async handler(this: AlertThis, ctx: Context<ListAlertsParams, TernMeta>) {
				requireUser(ctx, "viewer");
				const { page = 1, pageSize = this.settings.pageSize, since, until, ...rest } = ctx.params;
				const filter = { ...rest, since: since?.getTime(), until: until?.getTime() };
				const [rows, total] = await Promise.all([
					this.store.listAlerts(filter, (page - 1) * pageSize, pageSize),
					this.store.countAlerts(filter)
				]);
				return { rows: rows.map(toAlertView), total, page, pageSize };
			}
		},

		/** `GET /api/alerts/:id`: the alert and its notifications, oldest first (its history). */
		getAlert: {
			params: byIdParams,
			async handler(this: AlertThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "viewer");
				const alert = await this.store.alert(ctx.params.id);
				if (!alert) throw Errors.alertNotFound(ctx.params.id);
				const notifications = await this.store.notificationsOf(alert.id);
				return { ...toAlertView(alert), notifications: notifications.map(toNotificationView) };
			}
		},

		/** `POST /api/alerts/:id/ack` (operator): no more reminders or escalation; 409 STATE_CONFLICT once resolved. */
		ack: {
			params: byIdParams,
			async handler(this: AlertThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "operator");
				const alert = await this.store.alert(ctx.params.id);
				if (!alert) throw Errors.alertNotFound(ctx.params.id);
				if (alert.status === "resolved") throw Errors.alertResolved(alert.id);
				// A second acknowledgement keeps the first (who and when).
				if (!(await this.store.acknowledge(alert.id, Date.now(), usernameOf(ctx)))) {
					const now = await this.store.alert(alert.id);
					if (now?.status === "resolved") throw Errors.alertResolved(alert.id);
				}
				const view = toAlertView((await this.store.alert(alert.id))!);
				void ctx
					.broadcast("alert.changed", {
						id: view.id,
						ruleId: view.ruleId,
						status: "acknowledged",
						severity: view.severity,
						summary: view.summary,
						at: view.acknowledgedAt ?? new Date().toISOString()
					} satisfies AlertChangedEvent)
					.catch(() => undefined);
				return view;
			}
		},

		/** `GET /api/silences` (`?active=true|false`), newest first. */
		listSilences: {
			params: listSilencesParams,
			async handler(this: AlertThis, ctx: Context<{ active?: boolean }, TernMeta>) {
				requireUser(ctx, "viewer");
				const now = Date.now();
				const views = (await this.store.silences()).map(row => toSilenceView(row, now));
				return ctx.params.active === undefined ? views : views.filter(view => view.active === ctx.params.active);
			}
		},

		/** `POST /api/silences` (operator) `{ matchers, endsAt, comment? }` → 201 the silence. */
		createSilence: {
			params: createSilenceParams,
			async handler(this: AlertThis, ctx: Context<SilenceParams, TernMeta>) {
				requireUser(ctx, "operator");
				const now = Date.now();
				const endsAt = ctx.params.endsAt.getTime();
				if (endsAt <= now) {
					const message = "The 'endsAt' field must be a time in the future";
					throw Errors.validation(message, [{ type: "dateMin", field: "endsAt", message }]);
				}
				const row: SilenceRow = {
					id: uuidv7(now),
					matchers: JSON.stringify(ctx.params.matchers satisfies Labels),
					endsAt,
					comment: ctx.params.comment ?? "",
					createdBy: usernameOf(ctx),
					createdAt: now
				};
				await this.store.insertSilence(row);
				ctx.meta.$statusCode = 201;
				ctx.meta.$location = `/api/silences/${row.id}`;
				return toSilenceView(row, now);
			}
		},

		/** `DELETE /api/silences/:id` (operator): ends it now → the silence, inactive. */
		endSilence: {
			params: byIdParams,
			async handler(this: AlertThis, ctx: Context<{ id: string }, TernMeta>) {
				requireUser(ctx, "operator");
				const now = Date.now();
				await this.store.endSilence(ctx.params.id, now);
				const row = await this.store.silence(ctx.params.id);
				if (!row) throw Errors.silenceNotFound(ctx.params.id);
				return toSilenceView(row, now);
			}
		},

		/** The enabled rules, built-in ones included: what the monitor evaluates. Cached until a rule changes. */
		activeRules: {
			visibility: "public",
			async handler(this: AlertThis): Promise<AlertRuleView[]> {
				this.activeCache ??= this.store.rules().then(rows => rows.filter(r => r.enabled).map(toRuleView));
				this.activeCache.catch(() => (this.activeCache = null));
				return this.activeCache;
			}
		},

		/** One evaluation of one rule (see alert/evaluator.ts); answers after the state is written, before sending. */
		evaluate: {
			visibility: "public",
			params: evaluateParams,
			async handler(this: AlertThis, ctx: Context<EvaluateParams>) {
				return this.evaluator.evaluate(await this.mustGetRule(ctx.params.ruleId), ctx.params);
			}
		},

		/** Alerts firing now, cluster-wide: for /api/system/status. */
		firingCount: {
			visibility: "public",
			async handler(this: AlertThis) {
				return { firing: await this.store.countAlerts({ status: "firing" }) };
			}
		}
	},
	events: {
		/** A rule changed on some replica: the next activeRules reads them again. */
		"alert.rulesChanged"(this: AlertThis) {
			this.activeCache = null;
		}
	},
	methods,
	created(this: AlertThis) {
		if (!["all", "none"].includes(this.settings.defaultChannels))
			throw new TypeError(`settings.defaultChannels is "all" or "none", not '${this.settings.defaultChannels}'`);
		this.activeCache = null;
	},
	async started(this: AlertThis) {
		const box = this.keyring.sealer(CHANNEL_CONTEXT);
		this.store = new AlertStore((this as unknown as { model: { sequelize: Sequelize } }).model.sequelize);
		this.configs = new ChannelConfigs(box);
		this.notifier = new Notifier(
			this.store,
			box,
			{
				attempts: this.settings.notifyAttempts,
				backoffMs: this.settings.notifyBackoff,
				metrics: new AlertMetrics(this.broker.metrics)
			},
			this.logger
		);
		this.evaluator = new Evaluator(this.store, this.notifier, {
			defaultChannels: this.settings.defaultChannels,
			announce: event => void this.broker.broadcast("alert.changed", event).catch(() => undefined)
		});
		let seeded = 0;
		for (const row of builtinRows(Date.now())) if (await this.store.seedRule(row)) seeded++;
		if (seeded > 0) await this.broker.broadcast("alert.rulesChanged", {});
		this.startResealing(() => [channelResealTarget(this.store, this.keyring)]);
	},
	async stopped(this: AlertThis) {
		await this.notifier?.stop();
	}
};

export default AlertService;
