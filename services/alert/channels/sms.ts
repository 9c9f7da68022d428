/**
 * SMS through an HTTP gateway: one request per number, the body template (and the URL) with
 * `{{to}}`, `{{text}}`, `{{status}}`, `{{severity}}`, `{{summary}}` filled in — JSON-escaped when the
 * request is JSON, URL-encoded in the URL.
 */
import type { SmsConfig } from "../../../lib/contracts.ts";
import { render, smsVars, type Message } from "../templates.ts";
import { Channel, DEFAULT_TIMEOUT_MS, DeliveryError, headersRule, httpSend, timeoutRule } from "./base.ts";
import { httpUrlRule } from "./webhook.ts";

/** The body when the channel names none: JSON, as most gateways take. */
export const DEFAULT_SMS_BODY = '{"to":"{{to}}","text":"{{text}}"}';

/** The request for one number. */
export function smsRequest(config: SmsConfig, message: Message, to: string): { url: string; init: RequestInit } {
	const vars = smsVars(message, to);
	const headers: Record<string, string> = { ...config.headers };
	const typeKey = Object.keys(headers).find(k => k.toLowerCase() === "content-type");
	if (!typeKey) headers["content-type"] = "application/json";
	const json = /json/i.test(headers[typeKey ?? "content-type"]);
	const method = config.method ?? "POST";
	const url = render(config.url, vars, "url");
	if (method === "GET") return { url, init: { method, headers } };
	return { url, init: { method, headers, body: render(config.body ?? DEFAULT_SMS_BODY, vars, json ? "json" : "none") } };
}

export class SmsChannel extends Channel<SmsConfig> {
	readonly type = "sms";
	protected readonly schema = {
		url: httpUrlRule,
		method: { type: "enum", values: ["POST", "PUT", "GET"], optional: true },
		headers: headersRule,
		body: { type: "string", max: 8192, optional: true },
		to: { type: "array", min: 1, max: 50, items: { type: "string", min: 3, max: 32, pattern: /^\+?[0-9 ()-]+$/ } },
		timeoutMs: timeoutRule
	};
	/** Gateways take their API key in a header. */
	protected override readonly secretMaps = ["headers"];

	async send(config: SmsConfig, message: Message): Promise<void> {
		const failures: string[] = [];
		const missed: string[] = [];
		for (const to of config.to) {
			const { url, init } = smsRequest(config, message, to);
			try {
				await httpSend(url, init, config.timeoutMs ?? DEFAULT_TIMEOUT_MS);
			} catch (err) {
				failures.push(`${to}: ${(err as Error).message}`);
				missed.push(to);
			}
		}
		// A retry texts only the numbers that were missed: the others have the message already.
		if (failures.length > 0) throw new DeliveryError(failures.join("; "), { ...config, to: missed });
	}
}
