import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import fc from "fast-check";
import { sign, verify } from "../../../../services/alert/channels/webhook.ts";
import { smsRequest } from "../../../../services/alert/channels/sms.ts";
import { resolve } from "../../../../services/alert/channels/index.ts";
import { escapeHtml, htmlOf, render, testMessage, titleOf } from "../../../../services/alert/templates.ts";
import { covers, isSilenced, silenceLabels } from "../../../../services/alert/silences.ts";
import { SecretBox, deriveKey } from "../../../../lib/secret-box.ts";

const NOW = Date.parse("2026-01-01T00:00:00Z");

describe("webhook signature", () => {
	it("is t=<seconds>,v1=<hex HMAC-SHA256 of '<t>.<body>'>", () => {
		const body = '{"version":1}';
		const expected = createHmac("sha256", "k").update(`1700000000.${body}`).digest("hex");
		assert.equal(sign("k", body, 1700000000), `t=1700000000,v1=${expected}`);
	});

	it("verifies its own signature and refuses another secret, body or an old time", () => {
		fc.assert(
			fc.property(fc.string({ minLength: 1 }), fc.string(), (secret, body) => {
				const t = Math.floor(NOW / 1000);
				const header = sign(secret, body, t);
				return (
					verify(secret, header, body, NOW) &&
					!verify(secret + "x", header, body, NOW) &&
					!verify(secret, header, body + "x", NOW) &&
					!verify(secret, header, body, NOW + 301_000)
				);
			})
		);
	});
});

describe("templates", () => {
	it("titles a notice with its kind, severity, rule and summary", () => {
		assert.equal(
			titleOf(testMessage("ops", NOW)),
			"[TEST info] Test notification: A test of channel 'ops': if you read this, it works"
		);
	});

	it("fills {{names}}, JSON-escaped or URL-encoded as asked", () => {
		const vars = { text: 'say "hi"\n', to: "+1 2" };
		assert.equal(render('{"t":"{{text}}"}', vars, "json"), '{"t":"say \\"hi\\"\\n"}');
		assert.deepEqual(JSON.parse(render('{"t":"{{text}}"}', vars, "json")), { t: 'say "hi"\n' });
		assert.equal(render("https://x/?to={{to}}&q={{ nope }}", vars, "url"), "https://x/?to=%2B1%202&q=");
	});

	it("builds one SMS request per number, JSON unless the headers say otherwise", () => {
		const message = testMessage("sms", NOW);
		const json = smsRequest({ url: "http://gw/send", to: ["+1"] }, message, "+1");
		assert.deepEqual(JSON.parse(String(json.init.body)), { to: "+1", text: titleOf(message) });
		const form = smsRequest(
			{ url: "http://gw/send", to: ["+1"], headers: { "Content-Type": "text/plain" }, body: "{{to}}: {{severity}}" },
			message,
			"+1"
		);
		assert.equal(form.init.body, "+1: info");
	});

	it("escapes HTML in the mail body", () => {
		assert.equal(escapeHtml(`<a href="x">&'`), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
		const message = testMessage("<b>", NOW);
		assert.ok(!htmlOf(message).includes("<b>"));
	});
});

describe("silences", () => {
	const labels = silenceLabels(
		{ labels: { terminalId: "t1" }, severity: "critical" },
		{ id: "r1", name: "offline", labels: { team: "ops" } }
	);

	it("match on the alert's labels, the rule's, alertname, ruleId and severity", () => {
		assert.deepEqual(labels, { terminalId: "t1", team: "ops", alertname: "offline", ruleId: "r1", severity: "critical" });
		assert.ok(covers({ matchers: { alertname: "offline", terminalId: "t1" }, endsAt: NOW + 1 }, labels, NOW));
		assert.ok(!covers({ matchers: { alertname: "offline", terminalId: "t2" }, endsAt: NOW + 1 }, labels, NOW));
		assert.ok(!covers({ matchers: { alertname: "offline" }, endsAt: NOW }, labels, NOW), "ended");
		assert.ok(!covers({ matchers: {}, endsAt: NOW + 1 }, labels, NOW), "no matchers cover nothing");
		assert.ok(
			isSilenced(
				[
					{ matchers: { nope: "x" }, endsAt: NOW + 1 },
					{ matchers: { severity: "critical" }, endsAt: NOW + 1 }
				],
				labels,
				NOW
			)
		);
	});
});

describe("channel secrets", () => {
	const box = new SecretBox(deriveKey("jwt", "tern alert channels"));

	it("seal and open, and a tampered value does not open", () => {
		const sealed = box.seal("pw");
		assert.ok(SecretBox.isSealed(sealed));
		assert.equal(box.open(sealed), "pw");
		assert.throws(() => new SecretBox(deriveKey("other", "tern alert channels")).open(sealed));
	});

	it("are *** in answers, and *** sent back keeps the stored one", () => {
		const webhook = resolve("webhook");
		const stored = { url: "http://x", secret: "s", headers: { a: "1" } };
		assert.deepEqual(webhook.redact(stored), { url: "http://x", secret: "***", headers: { a: "***" } });
		assert.deepEqual(webhook.keepSecrets({ url: "http://y", secret: "***", headers: { a: "***", b: "2" } }, stored), {
			url: "http://y",
			secret: "s",
			headers: { a: "1", b: "2" }
		});
		assert.throws(() => webhook.keepSecrets({ url: "http://y", secret: "***" }, null), /config\.secret/);
		assert.throws(() => resolve("pager"), /channel types/);
	});
});
