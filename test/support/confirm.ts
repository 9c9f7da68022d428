/**
 * A destructive call through its second confirmation (design §6): the first call answers 202
 * `{ confirm: { token } }` and changes nothing; the same call with `X-Confirm: <token>` executes.
 */
import type { Reply } from "./rest.ts";

async function send(url: string, method: string, body: unknown, token: string | null, confirm?: string): Promise<Reply> {
	const headers: Record<string, string> = {};
	if (token) headers.authorization = `Bearer ${token}`;
	if (confirm) headers["x-confirm"] = confirm;
	if (body !== undefined) headers["content-type"] = "application/json";
	const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
	const text = await res.text();
	let parsed: unknown = text;
	try {
		parsed = text ? JSON.parse(text) : null;
	} catch {
		/* not JSON: keep the text */
	}
	return { status: res.status, body: parsed, headers: res.headers };
}

/** The call, confirmed: the answer of the second call, or of the first when it asked for none (an error, say). */
export async function confirmed(url: string, method: string, body: unknown, token: string | null): Promise<Reply> {
	const first = await send(url, method, body, token);
	const challenge = (first.body as { confirm?: { token?: unknown } } | null)?.confirm?.token;
	if (first.status !== 202 || typeof challenge !== "string") return first;
	return send(url, method, body, token, challenge);
}

/** The first call alone: its 202 challenge (or whatever else it answered). */
export function unconfirmed(url: string, method: string, body: unknown, token: string | null, confirm?: string): Promise<Reply> {
	return send(url, method, body, token, confirm);
}
