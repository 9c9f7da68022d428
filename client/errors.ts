/**
 * The API's errors as classes: every answer that is not a success becomes a `TernError` carrying
 * the API's stable `type`, its HTTP status and its `data`, and the common ones have their own
 * class so that a caller can `catch (e) { if (e instanceof NotFoundError) … }`.
 */

/** What Tern answers on any error: `{ name, message, code, type, data }`. */
export interface ErrorPayload {
	name?: string;
	message?: string;
	code?: number;
	type?: string;
	data?: unknown;
}

export class TernError extends Error {
	/** The API's stable error type, e.g. `VALIDATION_ERROR`, `TASK_NOT_FOUND`. */
	readonly type: string;
	/** The HTTP status (0 when the request never got an answer). */
	readonly status: number;
	readonly data: unknown;

	constructor(message: string, type: string, status: number, data?: unknown) {
		super(message);
		this.name = new.target.name;
		this.type = type;
		this.status = status;
		this.data = data;
	}
}

/** 422: the request named a field it may not, or gave one a value out of its range. */
export class ValidationError extends TernError {
	/** Each field at fault, as the API names it. */
	get fields(): { field?: string; message?: string; type?: string }[] {
		return Array.isArray(this.data) ? (this.data as { field?: string }[]) : [];
	}
}
/** 401: no token, a bad one, or one that has expired or been revoked. */
export class UnauthorizedError extends TernError {}
/** 403: the caller may not do this. */
export class ForbiddenError extends TernError {}
/** 404: no such task, terminal, job, … */
export class NotFoundError extends TernError {}
/** 409: the request conflicts with the state (a name taken, a task already final). */
export class ConflictError extends TernError {}
/** 429: too many requests; `retryAfter` says when to come back, seconds. */
export class RateLimitedError extends TernError {
	get retryAfter(): number | undefined {
		const value = (this.data as { retryAfter?: unknown } | undefined)?.retryAfter;
		return typeof value === "number" ? value : undefined;
	}
}
/** 503 (or no answer at all): Tern or a part of it is not available right now; try again. */
export class UnavailableError extends TernError {}
/** `wait` gave up before the task reached a final state. */
export class WaitTimeoutError extends TernError {}

const BY_STATUS: Record<number, typeof TernError> = {
	401: UnauthorizedError,
	403: ForbiddenError,
	404: NotFoundError,
	409: ConflictError,
	422: ValidationError,
	429: RateLimitedError,
	503: UnavailableError
};

/** The error an answer with `status` and `body` stands for. */
export function errorFrom(status: number, body: unknown): TernError {
	const payload = (body && typeof body === "object" ? body : {}) as ErrorPayload;
	const Class = BY_STATUS[status] ?? TernError;
	const type = typeof payload.type === "string" ? payload.type : `HTTP_${status}`;
	const message = typeof payload.message === "string" ? payload.message : `HTTP ${status}`;
	return new Class(message, type, status, payload.data);
}
