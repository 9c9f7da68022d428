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
			m => m.some(mail => /FIRING/.test(mail.subject ?? "") && (mail.subject ?? "").includes(name)),
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

	/** Runs `n` tasks on `terminal` to `outcome`, each to its end. */
	async function run(terminal: TestTerminal, n: number, outcome: "success" | "failed" | "timeout"): Promise<void> {
		for (let i = 0; i < n; i++) {
			const id = await tern.submit({
				terminalId: terminal.id,
				type: "work",
				...(outcome === "timeout" ? { timeout: 0.2 } : {})
			});
			const task = await terminal.nextTask();
			await terminal.ack(task);
			if (outcome !== "timeout") await terminal.result(task, outcome, null, outcome === "failed" ? { error: "boom" } : {});
			await tern.waitForStatus(id, outcome === "success" ? "COMPLETED" : outcome === "failed" ? "FAILED" : "TIMEOUT");
		}
	}

	it("tasks timing out over 5% fires; enough tasks that finish bring it under and resolve it", async () => {
		const r = await only("task_timeout_rate");
		assert.equal(r.threshold, 0.05);
		const terminal = await tern.connectTerminal("rate-1", await tern.registerTerminal("rate-1"));
		await run(terminal, 2, "timeout");
		const alert = await fires(r.id, r.name);
		assert.match(alert.summary, /2 of 2 tasks/);
		await staysQuiet(r.id);
		await run(terminal, 40, "success");
		await resolves(r.id, r.name);
		terminal.close();
	});

	it("failures above the failure-rate threshold fire, and resolve as tasks succeed again", async () => {
		const r = await only("task_failure_rate");
		const terminal = await tern.connectTerminal("rate-2", await tern.registerTerminal("rate-2"));
		await run(terminal, 15, "failed");
		await fires(r.id, r.name);
		await staysQuiet(r.id);
		await run(terminal, 40, "success");
		await resolves(r.id, r.name);
		terminal.close();
	});

	it("a job that finds no terminal fires, labelled with the job; it resolves once its window has passed", async () => {
		const r = await only("job_fire_problems", { window: 2 });
		const job = await tern.api("POST", "/api/jobs", {
			name: "nobody-to-run-it",
			schedule: { every: 3600 },
			task: { selector: { labels: { pool: "no-such-pool" } }, type: "work" }
		});
		assert.equal(job.status, 201, JSON.stringify(job.body));
		await tern.api("POST", `/api/jobs/${job.body.id}/pause`);
		assert.equal((await tern.api("POST", `/api/jobs/${job.body.id}/execute`)).status, 200);
		const alert = await fires(r.id, r.name);
		assert.equal(alert.labels.jobId, job.body.id);
		assert.equal(alert.labels.outcome, "NO_TERMINAL");
		await resolves(r.id, r.name);
	});

	it("a pending task older than the threshold fires; delivering it resolves", async () => {
		const r = await only("queue_oldest_seconds", { threshold: 0.5 });
		const token = await tern.registerTerminal("late-1");
		const id = await tern.submit({ terminalId: "late-1", type: "work" });
		await fires(r.id, r.name);
		const terminal = await tern.connectTerminal("late-1", token);
		const task = await terminal.nextTask();
		assert.equal(task.taskId, id);
		await resolves(r.id, r.name);
		await terminal.ack(task);
		await terminal.result(task);
		terminal.close();
	});

	it("a terminal labelled critical that stays offline fires, for that terminal; reconnecting resolves", async () => {
		const r = await only("terminal_offline_seconds", { condition: ">=", threshold: 0 });
		const token = await tern.registerTerminal("crit-1", { labels: { critical: "true" } });
		await tern.registerTerminal("plain-1");
		const alert = await fires(r.id, r.name);
		assert.deepEqual(alert.labels.terminalId, "crit-1");
		const firing = (await tern.api<{ rows: AlertView[] }>("GET", `/api/alerts?status=firing&ruleId=${r.id}`)).body.rows;
		assert.deepEqual(
			firing.map(a => a.labels.terminalId),
			["crit-1"],
			"only the critical terminal"
		);
		const terminal = await tern.connectTerminal("crit-1", token);
		await resolves(r.id, r.name);
		terminal.close();
	});

	it("a rule of one's own: an unacknowledged alert escalates to a second channel; a silence keeps another quiet", async () => {
		await only("queue_oldest_seconds", { enabled: false }); // every built-in off
		const [webhook, email] = channels;
		const escalating = await tern.api<AlertRuleView>("POST", "/api/alert-rules", {
			name: "backlog-escalates",
			metric: "tasks_pending",
			condition: ">=",
			threshold: 1,
			severity: "critical",
			channels: [webhook],
			escalation: { after: 1, channels: [email] }
		});
		assert.equal(escalating.status, 201, JSON.stringify(escalating.body));
		const silenced = await tern.api<AlertRuleView>("POST", "/api/alert-rules", {
			name: "backlog-silenced",
			metric: "tasks_pending",
			condition: ">=",
			threshold: 1,
			channels: [webhook]
		});
		assert.equal(silenced.status, 201, JSON.stringify(silenced.body));
		const silence = await tern.api("POST", "/api/silences", {
			matchers: { alertname: "backlog-silenced" },
			endsAt: new Date(Date.now() + 3_600_000).toISOString(),
			comment: "known backlog"
		});
		assert.equal(silence.status, 201, JSON.stringify(silence.body));

		await tern.registerTerminal("backlog-1");
		await tern.submit({ terminalId: "backlog-1", type: "work" });
		await evaluate();
		await hook.until(r => hooksFor(escalating.body.id, "firing")(r).length === 1, 10_000, "the escalating rule's webhook");
		const mails = smtp.messages.length;
		await waitFor(
			async () => {
				await evaluate();
				return smtp.messages.slice(mails).some(m => (m.subject ?? "").includes("backlog-escalates"));
			},
			10_000,
			() => "the escalation e-mail"
		);
		const [alert] = (await tern.api<{ rows: AlertView[] }>("GET", `/api/alerts?status=firing&ruleId=${escalating.body.id}`))
			.body.rows;
		assert.ok(alert.escalatedAt, "the alert records its escalation");

		// The silenced rule's alert fires too, and its history says why nothing was sent.
		const [quiet] = (await tern.api<{ rows: AlertView[] }>("GET", `/api/alerts?status=firing&ruleId=${silenced.body.id}`))
			.body.rows;
		assert.ok(quiet, "the silenced alert fires");
		const detail = await tern.api<{ notifications: { status: string }[] }>("GET", `/api/alerts/${quiet.id}`);
		assert.deepEqual(
			detail.body.notifications.map(n => n.status),
			["silenced"]
		);
		assert.equal(hooksFor(silenced.body.id)(hook.requests).length, 0);
	});
});
