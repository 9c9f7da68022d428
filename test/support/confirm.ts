/**
 * A destructive call through its second confirmation (design §6): the first call answers 202
 * `{ confirm: { token } }` and changes nothing; the same call with `X-Confirm: <token>` executes.
 */
import { restCall, type Reply } from "./rest.ts";

function send(url: string, method: string, body: unknown, token: string | null, confirm?: string): Promise<Reply> {
	return restCall(url, method, body, token, undefined, confirm ? { "x-confirm": confirm } : {});
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
