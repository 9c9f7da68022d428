/**
 * Alerting end to end: rules, channels and silences over REST; `alert.evaluate` driven through
 * the broker as the monitor drives it, with fixed times; notices received by a real HTTP
 * receiver (webhook, SMS gateway) and a real SMTP sink. Once on SQLite, once on MariaDB
 * (TERN_TEST_MYSQL), where the compare-and-set writes meet a pool of connections.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestTern, waitFor } from "../helpers/tern.ts";
import { HttpReceiver, SmtpSink } from "../support/receivers.ts";
import { TestDatabase } from "../helpers/mysql.ts";
import { verify } from "../../services/alert/channels/webhook.ts";
import type { EvaluateParams, Observation } from "../../lib/contracts.ts";
import { call } from "../../lib/actions.ts";
import { needs } from "../support/servers.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const S = 1000;

function obs(fingerprint: string, value = 1, labels: Record<string, string> = {}): Observation {
	return { fingerprint, labels, value, summary: `${fingerprint} is at ${value}` };
}

for (const backend of ["SQLite", "MariaDB"] as const) {
	describe(`alert on ${backend}`, { skip: backend === "MariaDB" && needs("mariadb") }, () => {
		let tern: TestTern;
		let db: TestDatabase | undefined;
		let hook: HttpReceiver;
		let sms: HttpReceiver;
		let smtp: SmtpSink;
		let hookId: string;

		const evaluate = (params: EvaluateParams) =>
			tern.broker.call<{ firing: number; notified: number }, EvaluateParams>("alert.evaluate", params);
		const createRule = async (body: Record<string, unknown>) => {
			const reply = await tern.api("POST", "/api/alert-rules", {
				metric: "tasks_pending",
				condition: ">",
				threshold: 10,
				...body
			});
			assert.equal(reply.status, 201, JSON.stringify(reply.body));
			return reply.body.id as string;
		};
		const notificationsOf = async (alertId: string) => (await tern.api("GET", `/api/alerts/${alertId}`)).body.notifications;
		const openAlert = async (ruleId: string) =>
			(await tern.api("GET", `/api/alerts?ruleId=${ruleId}`)).body.rows.find(
				(a: { status: string }) => a.status !== "resolved"
			);
		const hookBodies = () => hook.requests.map(r => r.body);

		before(async () => {
			[hook, sms, smtp] = await Promise.all([HttpReceiver.start(), HttpReceiver.start(), SmtpSink.start()]);
			if (backend === "MariaDB") db = await TestDatabase.create("tern_alert");
			tern = await TestTern.start({ settings: { alert: { notifyBackoff: 20, defaultChannels: "none" } }, dbUri: db?.uri });
			const reply = await tern.api("POST", "/api/alert-channels", {
				name: "hook",
				type: "webhook",
				config: { url: `${hook.url}/hook`, secret: "s3cret", headers: { "x-team": "ops" } }
			});
			assert.equal(reply.status, 201, JSON.stringify(reply.body));
			hookId = reply.body.id;
		});
		after(async () => {
			await tern.close();
			await Promise.all([hook.close(), sms.close(), smtp.close()]);
			await db?.drop();
		});

		it("lists the built-in rules, lets them be tuned and disabled but not deleted", async () => {
			const rules = (await tern.api("GET", "/api/alert-rules")).body;
			const drop = rules.find((r: { id: string }) => r.id === "builtin-terminals-drop");
			assert.deepEqual(
				[
					drop.name,
					drop.builtin,
					drop.enabled,
					drop.severity,
					drop.condition,
					drop.threshold,
					drop.window,
					drop.for,
					drop.repeatInterval
				],
				["terminals_online_drop", true, true, "critical", ">=", 0.5, 300, 0, 3600]
			);
			assert.equal(rules.filter((r: { builtin: boolean }) => r.builtin).length, 9);
			const tuned = await tern.api("PUT", "/api/alert-rules/builtin-queue-oldest", { threshold: 900, enabled: false });
			assert.deepEqual([tuned.status, tuned.body.threshold, tuned.body.enabled], [200, 900, false]);
			const del = await tern.api("DELETE", "/api/alert-rules/builtin-queue-oldest");
			assert.deepEqual([del.status, del.body.type], [409, "BUILTIN_RULE"]);
			const active = await call(tern.broker, "alert.activeRules", {});
			assert.ok(!active.some(r => r.id === "builtin-queue-oldest"), "a disabled rule is not evaluated");
		});

		it("refuses bad rules, channels and silences with the field named, and changes nothing", async () => {
			const cases: [string, string, unknown, RegExp][] = [
				["POST", "/api/alert-rules", { name: "x", metric: "nope", condition: ">", threshold: 1 }, /metric/],
				[
					"POST",
					"/api/alert-rules",
					{ name: "x", metric: "tasks_pending", condition: ">", threshold: 1, window: 0 },
					/window/
				],
				[
					"POST",
					"/api/alert-rules",
					{ name: "x", metric: "tasks_pending", condition: ">", threshold: 1, extra: 1 },
					/extra/
				],
				[
					"POST",
					"/api/alert-rules",
					{ name: "x", metric: "tasks_pending", condition: ">", threshold: 1, channels: ["nope"] },
					/channels/
				],
				["POST", "/api/alert-channels", { name: "bad", type: "webhook", config: { url: "ftp://x" } }, /config\.url/],
				[
					"POST",
					"/api/alert-channels",
					{ name: "bad", type: "email", config: { to: ["not-an-email"], host: "h", port: 25 } },
					/config\.to/
				],
				["POST", "/api/alert-channels", { name: "bad", type: "pager", config: {} }, /type/],
				["POST", "/api/silences", { matchers: {}, endsAt: new Date(Date.now() + 60_000).toISOString() }, /matchers/]
			];
			for (const [method, path, body, field] of cases) {
				const reply = await tern.api(method, path, body);
				assert.equal(reply.status, 422, `${path} ${JSON.stringify(body)}: ${JSON.stringify(reply.body)}`);
				assert.equal(reply.body.type, "VALIDATION_ERROR");
				assert.match(reply.body.message, field);
			}
			assert.equal((await tern.api("GET", "/api/alert-rules/nope")).body.type, "RULE_NOT_FOUND");
			assert.equal((await tern.api("GET", "/api/alert-channels/nope")).body.type, "CHANNEL_NOT_FOUND");
			assert.equal((await tern.api("GET", "/api/alerts/nope")).body.type, "ALERT_NOT_FOUND");
			assert.equal((await tern.api("DELETE", "/api/silences/nope")).body.type, "SILENCE_NOT_FOUND");
			assert.equal((await tern.api("GET", "/api/alert-channels")).body.length, 1, "no channel was made");
		});

		it("shows secrets as *** and keeps them when a PUT sends *** back", async () => {
			const view = (await tern.api("GET", `/api/alert-channels/${hookId}`)).body;
			assert.deepEqual([view.config.secret, view.config.headers["x-team"]], ["***", "***"]);
			const put = await tern.api("PUT", `/api/alert-channels/${hookId}`, { config: { ...view.config, timeoutMs: 2000 } });
			assert.equal(put.status, 200, JSON.stringify(put.body));
			const test = await tern.api("POST", `/api/alert-channels/${hookId}/test`);
			assert.deepEqual(test.body, { ok: true, status: "sent", attempts: 1, error: null });
			const last = hook.requests.at(-1)!;
			assert.ok(verify("s3cret", String(last.headers["x-tern-signature"]), last.raw), "signed with the kept secret");
			assert.equal(last.headers["x-team"], "ops");
			assert.equal(last.body.kind, "test");
		});

		it("fires once, sends no duplicate while firing, reminds after repeatInterval, and tells of the resolve", async () => {
			const ruleId = await createRule({
				name: "pending-high",
				channels: [hookId],
				repeatInterval: 60,
				severity: "critical"
			});
			const before = hook.requests.length;
			const first = await evaluate({ ruleId, at: T0, active: [obs("q")] });
			assert.deepEqual(first, { firing: 1, notified: 1 });
			assert.deepEqual(await evaluate({ ruleId, at: T0 + 30 * S, active: [obs("q")] }), { firing: 1, notified: 0 });
			await waitFor(
				() => hook.requests.length === before + 1,
				5000,
				() => "the firing webhook"
			);
			const firing = hook.requests[before];
			assert.ok(verify("s3cret", String(firing.headers["x-tern-signature"]), firing.raw, Date.now(), 10 ** 10));
			const payload = firing.body;
			assert.deepEqual(
				[payload.version, payload.status, payload.kind, payload.alert.ruleId],
				[1, "firing", "firing", ruleId]
			);

			assert.equal((await evaluate({ ruleId, at: T0 + 61 * S, active: [obs("q", 2)] })).notified, 1, "a reminder");
			assert.equal((await evaluate({ ruleId, at: T0 + 62 * S, active: [] })).notified, 1, "the resolve");
			await waitFor(
				() => hook.requests.length === before + 3,
				5000,
				() => "repeat and resolved"
			);
			assert.deepEqual(
				hookBodies()
					.slice(before)
					.map(b => [b.kind, b.status]),
				[
					["firing", "firing"],
					["repeat", "firing"],
					["resolved", "resolved"]
				]
			);
			const alert = (await tern.api("GET", `/api/alerts?ruleId=${ruleId}&status=resolved`)).body.rows[0];
			assert.equal(alert.resolvedAt, new Date(T0 + 62 * S).toISOString());
			const iso = (ms: number) => encodeURIComponent(new Date(ms).toISOString());
			const page = (await tern.api("GET", `/api/alerts?ruleId=${ruleId}&since=${iso(T0)}&until=${iso(T0 + S)}&pageSize=1`))
				.body;
			assert.deepEqual([page.total, page.rows.length, page.page, page.pageSize], [1, 1, 1, 1]);
			assert.equal((await tern.api("GET", `/api/alerts?ruleId=${ruleId}&until=${iso(T0)}`)).body.total, 0);
			assert.equal((await tern.api("GET", "/api/alerts?since=yesterday")).body.type, "VALIDATION_ERROR");
		});

		it("resolves a pending alert without a word, and fires after `for`", async () => {
			const ruleId = await createRule({ name: "held", channels: [hookId], for: 60 });
			assert.deepEqual(await evaluate({ ruleId, at: T0, active: [obs("h")] }), { firing: 0, notified: 0 });
			assert.deepEqual(await evaluate({ ruleId, at: T0 + 10 * S, active: [] }), { firing: 0, notified: 0 });
			await evaluate({ ruleId, at: T0 + 20 * S, active: [obs("h")] });
			assert.deepEqual(await evaluate({ ruleId, at: T0 + 80 * S, active: [obs("h")] }), { firing: 1, notified: 1 });
			const rows = (await tern.api("GET", `/api/alerts?ruleId=${ruleId}`)).body.rows;
			assert.deepEqual(
				rows.map((a: { status: string; firingAt: string | null }) => [a.status, a.firingAt !== null]),
				[
					["firing", true],
					["resolved", false]
				]
			);
		});

		it("records a silenced notice and sends nothing", async () => {
			const ruleId = await createRule({ name: "silenced-rule", channels: [hookId], labels: { team: "db" } });
			const silence = await tern.api("POST", "/api/silences", {
				matchers: { alertname: "silenced-rule", team: "db" },
				endsAt: new Date(Date.now() + 3_600_000).toISOString(),
				comment: "maintenance"
			});
			assert.equal(silence.status, 201);
			const before = hook.requests.length;
			assert.equal((await evaluate({ ruleId, at: T0, active: [obs("s")] })).notified, 1);
			const alert = await openAlert(ruleId);
			assert.deepEqual(
				(await notificationsOf(alert.id)).map((n: { status: string }) => n.status),
				["silenced"]
			);
			const ended = await tern.api("DELETE", `/api/silences/${silence.body.id}`);
			assert.equal(ended.body.active, false);
			assert.equal(hook.requests.length, before);
		});

		it("escalates an unacknowledged alert once; an acknowledged one neither escalates nor reminds", async () => {
			const escalated = await createRule({
				name: "esc",
				channels: [],
				repeatInterval: 0,
				escalation: { after: 120, channels: [hookId] }
			});
			await evaluate({ ruleId: escalated, at: T0, active: [obs("e")] });
			assert.equal((await evaluate({ ruleId: escalated, at: T0 + 121 * S, active: [obs("e")] })).notified, 1);
			assert.equal((await evaluate({ ruleId: escalated, at: T0 + 300 * S, active: [obs("e")] })).notified, 0, "once");
			const alert = await openAlert(escalated);
			assert.ok(alert.escalatedAt);
			assert.equal(
				(await evaluate({ ruleId: escalated, at: T0 + 301 * S, active: [] })).notified,
				1,
				"the escalation channel hears the resolve"
			);

			const acked = await createRule({
				name: "acked",
				channels: [hookId],
				repeatInterval: 60,
				escalation: { after: 120, channels: [hookId] }
			});
			await evaluate({ ruleId: acked, at: T0, active: [obs("a")] });
			const open = await openAlert(acked);
			const ack = await tern.api("POST", `/api/alerts/${open.id}/ack`);
			assert.deepEqual([ack.status, ack.body.acknowledgedBy], [200, "admin"]);
			assert.equal((await evaluate({ ruleId: acked, at: T0 + 200 * S, active: [obs("a")] })).notified, 0);
			await evaluate({ ruleId: acked, at: T0 + 201 * S, active: [] });
			const late = await tern.api("POST", `/api/alerts/${open.id}/ack`);
			assert.deepEqual([late.status, late.body.type], [409, "STATE_CONFLICT"]);
		});

		it("opens one alert and sends one notice for two concurrent evaluations", async () => {
			const ruleId = await createRule({ name: "race", channels: [hookId] });
			const results = await Promise.all([0, 1, 2].map(() => evaluate({ ruleId, at: T0, active: [obs("r")] })));
			assert.equal(
				results.reduce((n, r) => n + r.notified, 0),
				1
			);
			const rows = (await tern.api("GET", `/api/alerts?ruleId=${ruleId}`)).body.rows;
			assert.equal(rows.length, 1);
			assert.equal((await notificationsOf(rows[0].id)).length, 1);
		});

		it("retries a failing webhook, shows the attempts, and does not hold up the other channels", async () => {
			const flaky = await HttpReceiver.start();
			flaky.answers.push(500, 200);
			const down = await tern.api("POST", "/api/alert-channels", {
				name: "down",
				type: "webhook",
				config: { url: "http://127.0.0.1:1/x" }
			});
			const flakyId = (
				await tern.api("POST", "/api/alert-channels", { name: "flaky", type: "webhook", config: { url: flaky.url } })
			).body.id;
			const mail = await tern.api("POST", "/api/alert-channels", {
				name: "mail",
				type: "email",
				config: { to: ["ops@example.com"], host: "127.0.0.1", port: smtp.port, from: "tern@example.com" }
			});
			const text = await tern.api("POST", "/api/alert-channels", {
				name: "sms",
				type: "sms",
				config: {
					url: `${sms.url}/send`,
					headers: { authorization: "Bearer key" },
					to: ["+100", "+200"],
					body: '{"to":"{{to}}","msg":"{{text}}"}'
				}
			});
			const ruleId = await createRule({
				name: "many",
				severity: "critical",
				channels: [down.body.id, flakyId, mail.body.id, text.body.id]
			});
			assert.equal((await evaluate({ ruleId, at: T0, active: [obs("m", 1, { host: 'a"b' })] })).notified, 4);
			await waitFor(
				() => smtp.messages.length === 1 && sms.requests.length === 2,
				5000,
				() => "mail and SMS"
			);
			const message = smtp.messages[0];
			assert.match(String(message.subject), /^\[FIRING critical\] many: m is at 1$/);
			assert.match(String(message.text), /Severity: critical/);
			assert.match(String(message.html), /<h2>/);
			const sent = sms.requests.map(r => r.body);
			assert.deepEqual(
				sent.map(b => b.to),
				["+100", "+200"]
			);
			assert.equal(sms.requests[0].headers.authorization, "Bearer key");
			const alert = await openAlert(ruleId);
			await waitFor(
				async () => (await notificationsOf(alert.id)).every((n: { status: string }) => n.status !== "pending"),
				5000,
				() => "every delivery to end"
			);
			const byChannel = new Map((await notificationsOf(alert.id)).map((n: { channelId: string }) => [n.channelId, n]));
			const failed = byChannel.get(down.body.id) as { status: string; attempts: number; lastError: string };
			assert.deepEqual([failed.status, failed.attempts], ["failed", 3]);
			assert.ok(failed.lastError);
			const retried = byChannel.get(flakyId) as { status: string; attempts: number };
			assert.deepEqual([retried.status, retried.attempts], ["sent", 2]);
			assert.equal(flaky.requests.length, 2);
			await flaky.close();
		});

		it("texts again only the numbers an SMS gateway missed", async () => {
			const before = sms.requests.length;
			sms.answers.push(200, 500);
			const channel = await tern.api("POST", "/api/alert-channels", {
				name: "sms-partial",
				type: "sms",
				config: { url: `${sms.url}/send`, to: ["+301", "+302"] }
			});
			const test = await tern.api("POST", `/api/alert-channels/${channel.body.id}/test`);
			assert.deepEqual([test.body.ok, test.body.attempts], [true, 2]);
			assert.deepEqual(
				sms.requests.slice(before).map(r => r.body.to),
				["+301", "+302", "+302"]
			);
		});

		it("lets viewers read, operators ack and silence, and only admins write rules and channels", async () => {
			const tokens: Record<string, string> = {};
			for (const role of ["viewer", "operator"]) {
				const username = `${role}-${backend.toLowerCase()}`;
				await tern.api("POST", "/api/users", { username, password: `${username}-password-1`, role });
				tokens[role] = (
					await tern.api("POST", "/api/auth/login", { username, password: `${username}-password-1` }, null)
				).body.token;
			}
			const endsAt = new Date(Date.now() + 60_000).toISOString();
			const as = (role: string, method: string, path: string, body?: unknown) => tern.api(method, path, body, tokens[role]);
			assert.equal((await as("viewer", "GET", "/api/alert-rules")).status, 200);
			assert.equal((await as("viewer", "GET", "/api/alerts")).status, 200);
			assert.equal((await as("viewer", "POST", "/api/silences", { matchers: { a: "b" }, endsAt })).body.type, "FORBIDDEN");
			assert.equal((await as("operator", "POST", "/api/silences", { matchers: { a: "b" }, endsAt })).status, 201);
			const rule = { name: "by-operator", metric: "tasks_pending", condition: ">", threshold: 1 };
			assert.equal((await as("operator", "POST", "/api/alert-rules", rule)).status, 403);
			const channel = { name: "by-operator", type: "webhook", config: { url: hook.url } };
			assert.equal((await as("operator", "POST", "/api/alert-channels", channel)).status, 403);
			assert.equal((await as("operator", "POST", `/api/alert-channels/${hookId}/test`)).status, 403);
		});

		it("does not notify again after a restart on the same data", async () => {
			const ruleId = await createRule({ name: "restart", channels: [hookId], repeatInterval: 600 });
			await evaluate({ ruleId, at: T0, active: [obs("x")] });
			tern = await tern.restart({ alert: { notifyBackoff: 20, defaultChannels: "none" } });
			assert.deepEqual(await evaluate({ ruleId, at: T0 + 60 * S, active: [obs("x")] }), { firing: 1, notified: 0 });
			const rule = (await tern.api("GET", "/api/alert-rules/builtin-queue-oldest")).body;
			assert.deepEqual([rule.threshold, rule.enabled], [900, false], "seeding kept the operator's edits");
		});
	});
}
