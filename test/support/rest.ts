/**
 * A small REST client for Tern: JSON in and out, a bearer token.
 */

export interface Reply<T = any> {
	status: number;
	body: T;
	headers: Headers;
}

/**
 * One call: `body` as JSON (a string as it is), `token` as the bearer token (none when null);
 * the answer's body parsed as JSON (its text when it is not JSON). `extraHeaders` go as they are
 * (`X-Confirm`, say).
 */
export async function restCall<T = any>(
	url: string,
	method: string,
	body?: unknown,
	token: string | null = null,
	signal?: AbortSignal,
	extraHeaders: Record<string, string> = {}
): Promise<Reply<T>> {
	const headers: Record<string, string> = { ...extraHeaders };
	if (token) headers.authorization = `Bearer ${token}`;
	let payload: string | undefined;
	if (body !== undefined) {
		headers["content-type"] = "application/json";
		payload = typeof body === "string" ? body : JSON.stringify(body);
	}
	const res = await fetch(url, { method, headers, body: payload, signal });
	const text = await res.text();
	let parsed: unknown = text;
	try {
		parsed = text ? JSON.parse(text) : null;
	} catch {
		/* not JSON: keep the text */
	}
	return { status: res.status, body: parsed as T, headers: res.headers };
}

export class Rest {
	readonly url: string;
	token: string | null;

	constructor(url: string, token: string | null = null) {
		this.url = url;
		this.token = token;
	}

	call<T = any>(method: string, path: string, body?: unknown): Promise<Reply<T>> {
		return restCall<T>(this.url + path, method, body, this.token);
	}

	/** Logs in and keeps the token for later calls. */
	async login(username: string, password: string): Promise<string> {
		const reply = await this.call<{ token: string }>("POST", "/api/auth/login", { username, password });
		if (reply.status !== 200) throw new Error(`login: ${reply.status} ${JSON.stringify(reply.body)}`);
		this.token = reply.body.token;
		return this.token;
	}

	async registerTerminal(id: string, extra: Record<string, unknown> = {}): Promise<string> {
		const reply = await this.call<{ token: string }>("POST", "/api/terminals", { id, ...extra });
		if (reply.status !== 201) throw new Error(`register ${id}: ${reply.status} ${JSON.stringify(reply.body)}`);
		return reply.body.token;
	}

	/** `total` of GET /api/tasks with these filters. */
	async countTasks(filters: Record<string, string>): Promise<number> {
		const query = new URLSearchParams({ ...filters, pageSize: "1" });
		const reply = await this.call<{ total: number }>("GET", `/api/tasks?${query}`);
		if (reply.status !== 200) throw new Error(`GET /api/tasks?${query}: ${reply.status} ${JSON.stringify(reply.body)}`);
		return reply.body.total;
	}
}

/** Runs `fn` over `items` with at most `limit` at a time. */
export async function inBatches<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
	const out: R[] = new Array(items.length);
	let next = 0;
	const worker = async () => {
		while (next < items.length) {
			const i = next++;
			out[i] = await fn(items[i], i);
		}
	};
	await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
	return out;
}
