/**
 * Tern's REST API as the agent uses it: JSON over fetch with the terminal's bearer token, and
 * errors sorted into the two kinds the agent acts on — the server refused (do not send it
 * again) or the message may not have arrived (keep it and send it again later).
 */

/** What Tern answered an ack, progress or result with, whatever the channel. */
export type Reply = Record<string, unknown>;

/** A failed call to Tern, with its error type when Tern gave one. */
export class TernError extends Error {
	readonly type: string;
	readonly code: number;
	/** True when Tern refused the message for good: sending it again would be refused again. */
	readonly definitive: boolean;

	constructor(message: string, type: string, code: number, definitive = isDefinitive(type, code)) {
		super(message);
		this.type = type;
		this.code = code;
		this.definitive = definitive;
	}
}

/**
 * Refusals that stand however often the message is sent: 4xx but not the ones a retry may cure
 * (a conflict while the task changed, rate limits, timeouts, a token the server could not check).
 */
export function isDefinitive(type: string, code: number): boolean {
	if (code < 400 || code >= 500) return false;
	if (code === 408 || code === 429) return false;
	return !["STATE_CONFLICT", "UNAUTHORIZED", "INVALID_TOKEN", "SERVICE_NOT_AVAILABLE", "NOT_CONNECTED", "TIMEOUT"].includes(
		type
	);
}

export function toTernError(payload: unknown, fallbackCode = 500): TernError {
	const p = (payload ?? {}) as { message?: unknown; type?: unknown; code?: unknown };
	const code = typeof p.code === "number" ? p.code : fallbackCode;
	return new TernError(
		typeof p.message === "string" ? p.message : `HTTP ${code}`,
		typeof p.type === "string" ? p.type : "INTERNAL_ERROR",
		code
	);
}

export class RestClient {
	readonly baseUrl: string;
	private readonly token: string;
	private readonly timeoutMs: number;

	constructor(baseUrl: string, token: string, timeoutMs = 15_000) {
		this.baseUrl = baseUrl.replace(/\/+$/, "");
		this.token = token;
		this.timeoutMs = timeoutMs;
	}

	/** A JSON call; resolves with the parsed body of a 2xx, throws TernError otherwise. */
	async call<T = Reply>(method: string, path: string, body?: unknown): Promise<T> {
		let res: Response;
		try {
			res = await fetch(this.baseUrl + path, {
				method,
				headers: {
					authorization: `Bearer ${this.token}`,
					...(body === undefined ? {} : { "content-type": "application/json" })
				},
				body: body === undefined ? undefined : JSON.stringify(body),
				signal: AbortSignal.timeout(this.timeoutMs)
			});
		} catch (err) {
			const cause = (err as { cause?: { code?: string } }).cause?.code;
			throw new TernError(
				`${method} ${path}: ${cause ?? (err as Error).message}`,
				(err as Error).name === "TimeoutError" ? "TIMEOUT" : "NOT_CONNECTED",
				0,
				false
			);
		}
		const text = await res.text();
		let parsed: unknown = null;
		try {
			parsed = text ? JSON.parse(text) : null;
		} catch {
			parsed = { message: text.slice(0, 200) };
		}
		if (!res.ok) throw toTernError(parsed, res.status);
		return parsed as T;
	}
}
