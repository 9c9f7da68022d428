/**
 * The console's REST client: every call goes through `request`, which adds the session's token,
 * turns an error answer into an `ApiError` carrying the API's own `type`, message and field
 * list, and runs the second confirmation of destructive calls (202 `{ confirm }` → a dialog the
 * caller supplies → the same call again with `X-Confirm`).
 */
import type { ConfirmationOffer } from "./types.ts";

export interface ApiErrorItem {
	field?: string;
	message?: string;
	type?: string;
}

/** An error answer of the API, worded as the API worded it. */
export class ApiError extends Error {
	readonly status: number;
	readonly type: string;
	readonly data: unknown;

	constructor(status: number, type: string, message: string, data: unknown) {
		super(message);
		this.name = "ApiError";
		this.status = status;
		this.type = type;
		this.data = data;
	}

	/** The per-field messages of a VALIDATION_ERROR. */
	get fields(): ApiErrorItem[] {
		return Array.isArray(this.data) ? (this.data as ApiErrorItem[]) : [];
	}

	/** The message for `field` or one inside it (`task` → `task.type`), to show beside its input. */
	messageFor(field: string): string {
		return this.fields.find(item => item.field === field || item.field?.startsWith(`${field}.`))?.message ?? "";
	}
}

/** The API's message for a form's field, when `error` is the API's refusal. */
export function fieldMessage(error: unknown, field: string): string {
	return error instanceof ApiError ? error.messageFor(field) : "";
}

export type Query = Record<string, string | number | boolean | undefined | null>;

export interface RequestOptions {
	query?: Query;
	body?: unknown;
	/** Asked before a destructive call goes ahead; resolves true to confirm. */
	confirm?: (offer: ConfirmationOffer) => Promise<boolean>;
	signal?: AbortSignal;
}

/** Where the session keeps its token; `session.ts` sets it, 401s clear it. */
export const auth = {
	token: null as string | null,
	onUnauthorized: (): void => undefined
};

function url(path: string, query?: Query): string {
	const search = new URLSearchParams();
	for (const [key, value] of Object.entries(query ?? {}))
		if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
	const text = search.toString();
	return `/api${path}${text ? `?${text}` : ""}`;
}

async function send(method: string, path: string, options: RequestOptions, confirmToken?: string): Promise<Response> {
	const headers: Record<string, string> = { Accept: "application/json" };
	if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
	if (options.body !== undefined) headers["Content-Type"] = "application/json";
	if (confirmToken) headers["X-Confirm"] = confirmToken;
	try {
		return await fetch(url(path, options.query), {
			method,
			headers,
			body: options.body === undefined ? undefined : JSON.stringify(options.body),
			signal: options.signal
		});
	} catch (err) {
		if ((err as Error).name === "AbortError") throw err;
		throw new ApiError(0, "NETWORK_ERROR", "Tern cannot be reached: check the connection.", null);
	}
}

async function parse(res: Response): Promise<unknown> {
	const text = await res.text();
	if (!text) return null;
	try {
		return JSON.parse(text);
	} catch {
		return text;
	}
}

function errorOf(res: Response, body: unknown): ApiError {
	const b = (body ?? {}) as { type?: unknown; message?: unknown; data?: unknown };
	const type = typeof b.type === "string" ? b.type : `HTTP_${res.status}`;
	const message = typeof b.message === "string" ? b.message : res.statusText || `HTTP ${res.status}`;
	return new ApiError(res.status, type, message, b.data ?? null);
}

/** Thrown when the person declines a confirmation: nothing was changed. */
export class Declined extends Error {
	constructor() {
		super("Cancelled: nothing was changed.");
		this.name = "Declined";
	}
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
	let res = await send(method, path, options);
	let body = await parse(res);
	const offer = (body as { confirm?: ConfirmationOffer } | null)?.confirm;
	if (res.status === 202 && offer && typeof offer.token === "string") {
		if (!options.confirm || !(await options.confirm(offer))) throw new Declined();
		res = await send(method, path, options, offer.token);
		body = await parse(res);
	}
	if (!res.ok) {
		const error = errorOf(res, body);
		if (res.status === 401 && auth.token) auth.onUnauthorized();
		throw error;
	}
	return body as T;
}

export const api = {
	get: <T>(path: string, query?: Query, signal?: AbortSignal) => request<T>("GET", path, { query, signal }),
	post: <T>(path: string, body?: unknown, options: Omit<RequestOptions, "body"> = {}) =>
		request<T>("POST", path, { ...options, body: body ?? {} }),
	put: <T>(path: string, body: unknown) => request<T>("PUT", path, { body }),
	patch: <T>(path: string, body: unknown) => request<T>("PATCH", path, { body }),
	delete: <T>(path: string, options: Omit<RequestOptions, "body"> = {}) => request<T>("DELETE", path, options)
};

/** A path segment from a value the person typed or the API gave. */
export const seg = (value: string | number): string => encodeURIComponent(String(value));
