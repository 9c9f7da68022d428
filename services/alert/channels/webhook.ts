/**
 * Webhook: a POST of the versioned JSON `WebhookPayload`, signed when the channel has a secret:
 * `X-Tern-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. A
 * receiver recomputes the HMAC over the raw body and refuses an old `t` (replays).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { WebhookConfig, WebhookPayload } from "../../../lib/contracts.ts";
import type { Message } from "../templates.ts";
import { Channel, DEFAULT_TIMEOUT_MS, headersRule, httpSend, timeoutRule } from "./base.ts";

export const SIGNATURE_HEADER = "X-Tern-Signature";

export const httpUrlRule = { type: "url", max: 2048, pattern: /^https?:\/\//i };

/** The header value for `body` signed at `t` (unix seconds). */
export function sign(secret: string, body: string, t: number): string {
	const v1 = createHmac("sha256", secret).update(`${t}.${body}`).digest("hex");
	return `t=${t},v1=${v1}`;
}

/** A receiver's check: the signature is this secret's over this body, made within `toleranceS` of `now`. */
export function verify(secret: string, header: string, body: string, now = Date.now(), toleranceS = 300): boolean {
	const parts = Object.fromEntries(header.split(",").map(part => part.trim().split("=", 2) as [string, string]));
	const t = Number(parts.t);
	if (!Number.isInteger(t) || !parts.v1 || Math.abs(now / 1000 - t) > toleranceS) return false;
	const expected = Buffer.from(sign(secret, body, t).split("v1=")[1], "hex");
	const given = Buffer.from(parts.v1, "hex");
	return given.length === expected.length && timingSafeEqual(given, expected);
}

export function payloadOf(message: Message): WebhookPayload {
	return {
		version: 1,
		status: message.status,
		kind: message.kind,
		alert: message.alert,
		sentAt: new Date(message.sentAt).toISOString()
	};
}

export class WebhookChannel extends Channel<WebhookConfig> {
	readonly type = "webhook";
	protected readonly schema = {
		url: httpUrlRule,
		secret: { type: "string", min: 1, max: 1024, optional: true },
		headers: headersRule,
		timeoutMs: timeoutRule
	};
	protected override readonly secretFields = ["secret"];
	/** Custom headers usually carry a token: kept as secret as the signing secret. */
	protected override readonly secretMaps = ["headers"];

	async send(config: WebhookConfig, message: Message): Promise<void> {
		const body = JSON.stringify(payloadOf(message));
		const headers: Record<string, string> = {
			...config.headers,
			"content-type": "application/json",
			"user-agent": "tern-alert/1"
		};
		if (config.secret) headers[SIGNATURE_HEADER] = sign(config.secret, body, Math.floor(message.sentAt / 1000));
		await httpSend(config.url, { method: "POST", headers, body }, config.timeoutMs ?? DEFAULT_TIMEOUT_MS);
	}
}
