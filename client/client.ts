/**
 * TernClient: the SDK for those who submit work to Tern and follow it — log in or use an API
 * token, submit one task or a batch, wait for a task's final state, follow it live over the
 * `/client` socket, read its logs, and manage cron jobs. Every failure is a TernError subclass
 * carrying the API's `type` (client/errors.ts).
 *
 *   const tern = await TernClient.login("http://localhost:3000", "admin", password);
 *   const { taskId } = await tern.submit({ terminalId: "build-1", type: "shell", payload: { cmd: "make" } });
 *   const final = await tern.wait(taskId); // { status: "COMPLETED", data, … }
 */
import type { SubmitResult, TaskBody, TaskLogLine, TaskQueryView, TaskStatus, TaskView } from "../lib/contracts.ts";
import { TernError, UnavailableError, WaitTimeoutError, errorFrom } from "./errors.ts";
import { Follower, type FollowHandlers, type Following } from "./follow.ts";
import { Jobs } from "./jobs.ts";

export interface ClientOptions {
	/** Tern's base URL, e.g. `http://localhost:3000`. */
	url: string;
	/** A user's JWT (from login) or an API token (`tern_…`). */
	token?: string;
	/** Each request's limit, ms. @defaultValue 30000 */
	timeoutMs?: number;
	/** How requests travel: `fetch` unless another is given (a kept-alive node:http agent, say). */
	transport?: Transport;
}

/** One HTTP exchange: the request as the client builds it, the answer's status, type and text. */
export type Transport = (request: {
	method: string;
	url: URL;
	headers: Record<string, string>;
	body: string | undefined;
	timeoutMs: number;
}) => Promise<{ status: number; contentType: string; text: string }>;

/** The default transport: the global fetch. */
export const fetchTransport: Transport = async ({ method, url, headers, body, timeoutMs }) => {
	const response = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
	return { status: response.status, contentType: response.headers.get("content-type") ?? "", text: await response.text() };
};

export interface RequestOptions {
	body?: unknown;
	query?: Record<string, string | number | boolean | undefined>;
	headers?: Record<string, string>;
}

export interface TaskPage {
	rows: TaskView[];
	total: number;
	page: number;
	pageSize: number;
	totalPages: number;
}

export interface TaskFilters {
	/** One status or several, comma-separated. */
	status?: TaskStatus | string;
	terminalId?: string;
	type?: string;
	groupId?: string;
	q?: string;
	since?: string;
	until?: string;
	page?: number;
	pageSize?: number;
	sort?: string;
}

export type BatchAnswer = { taskId: string; duplicate?: boolean } | { error: { type: string; message: string } };

export const FINAL: ReadonlySet<string> = new Set(["COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "EXPIRED"]);

export class TernClient {
	readonly url: string;
	token: string | null;
	readonly jobs: Jobs;
	private readonly timeoutMs: number;
	private readonly transport: Transport;
	private follower: Follower | null = null;

	constructor(options: ClientOptions) {
		this.url = options.url.replace(/\/+$/, "");
		this.token = options.token ?? null;
		this.timeoutMs = options.timeoutMs ?? 30_000;
		this.transport = options.transport ?? fetchTransport;
		this.jobs = new Jobs(this);
	}

	/** A client logged in as `username`: its token is the user's JWT. */
	static async login(url: string, username: string, password: string, options: Omit<ClientOptions, "url" | "token"> = {}) {
		const client = new TernClient({ ...options, url });
		const { token } = await client.request<{ token: string }>("POST", "/api/auth/login", { body: { username, password } });
		client.token = token;
		return client;
	}

	/** One REST call: the parsed answer, or a TernError for anything but a 2xx. */
	async request<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
		const { status, body } = await this.send(method, path, options);
		if (status < 200 || status > 299) throw errorFrom(status, body);
		return body as T;
	}

	/**
	 * A destructive call (deletes, purge, key rotation): Tern answers the first request 202 with a
	 * confirmation token, and this repeats it with `X-Confirm` to carry it out.
	 */
	async confirmed<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
		const first = await this.send(method, path, options);
		if (first.status !== 202) {
			if (first.status < 200 || first.status > 299) throw errorFrom(first.status, first.body);
			return first.body as T;
		}
		const token = (first.body as { confirm?: { token?: string } }).confirm?.token;
		if (!token) throw new TernError("The confirmation answer carried no token", "CONFIRMATION_INVALID", 202);
		return this.request<T>(method, path, { ...options, headers: { ...options.headers, "X-Confirm": token } });
	}

	/** `POST /api/task/submit`. */
	submit(task: TaskBody): Promise<SubmitResult> {
		return this.request("POST", "/api/task/submit", { body: task });
	}

	/** `POST /api/tasks/batch`: up to 1000 tasks, one answer each, in order (a bad one does not stop the rest). */
	async submitBatch(tasks: TaskBody[]): Promise<BatchAnswer[]> {
		return (await this.request<{ results: BatchAnswer[] }>("POST", "/api/tasks/batch", { body: { tasks } })).results;
	}

	/** `GET /api/task/query`: the task's status, result and timestamps. */
	query(taskId: string): Promise<TaskQueryView> {
		return this.request("GET", "/api/task/query", { query: { taskId } });
	}

	/** `GET /api/tasks/:id`: the whole task with its history. */
	get(taskId: string): Promise<TaskView> {
		return this.request("GET", `/api/tasks/${encodeURIComponent(taskId)}`);
	}

	/** `GET /api/tasks`: a page of tasks, newest first unless `sort` says otherwise. */
	list(filters: TaskFilters = {}): Promise<TaskPage> {
		return this.request("GET", "/api/tasks", { query: { ...filters } });
	}

	/** `POST /api/tasks/:id/cancel`. */
	cancel(taskId: string): Promise<TaskView> {
		return this.request("POST", `/api/tasks/${encodeURIComponent(taskId)}/cancel`);
	}

	/** `GET /api/tasks/:id/logs`: the lines after `after` (a `seq`), and where the next page starts. */
	logs(
		taskId: string,
		options: { after?: number; limit?: number } = {}
	): Promise<{ lines: TaskLogLine[]; next: number | null }> {
		return this.request("GET", `/api/tasks/${encodeURIComponent(taskId)}/logs`, { query: options });
	}

	/** Follows a task live: its current status at once, then each change and each progress line. */
	follow(taskId: string, handlers: FollowHandlers): Promise<Following> {
		this.follower ??= new Follower(this.url, () => this.token);
		return this.follower.follow(taskId, handlers);
	}

	/**
	 * Resolves with the task once it is final (COMPLETED, FAILED, TIMEOUT, CANCELLED or EXPIRED),
	 * followed live, not polled; WaitTimeoutError after `timeoutMs`.
	 */
	async wait(taskId: string, options: { timeoutMs?: number } = {}): Promise<TaskQueryView> {
		const timeoutMs = options.timeoutMs ?? 60_000;
		let following: Following | null = null;
		let timer: NodeJS.Timeout | undefined;
		try {
			await new Promise<void>((resolve, reject) => {
				const late = () => new WaitTimeoutError(`task ${taskId} is not final after ${timeoutMs} ms`, "WAIT_TIMEOUT", 0);
				timer = setTimeout(() => reject(late()), timeoutMs);
				this.follow(taskId, { status: event => void (FINAL.has(event.status) && resolve()), error: reject }).then(
					handle => (following = handle),
					reject
				);
			});
		} finally {
			clearTimeout(timer);
			(following as Following | null)?.close();
		}
		return this.query(taskId);
	}

	/** Closes the live connection, if one was opened. */
	close(): void {
		this.follower?.close();
		this.follower = null;
	}

	private async send(method: string, path: string, options: RequestOptions): Promise<{ status: number; body: unknown }> {
		const url = new URL(this.url + path);
		for (const [key, value] of Object.entries(options.query ?? {}))
			if (value !== undefined) url.searchParams.set(key, String(value));
		const headers: Record<string, string> = { ...options.headers };
		if (this.token) headers.authorization = `Bearer ${this.token}`;
		if (options.body !== undefined) headers["content-type"] = "application/json";
		const body = options.body === undefined ? undefined : JSON.stringify(options.body);
		let answer: Awaited<ReturnType<Transport>>;
		try {
			answer = await this.transport({ method, url, headers, body, timeoutMs: this.timeoutMs });
		} catch (err) {
			throw new UnavailableError(`${method} ${path}: ${(err as Error).message}`, "UNREACHABLE", 0);
		}
		const parsed = answer.contentType.includes("json") && answer.text ? JSON.parse(answer.text) : answer.text;
		return { status: answer.status, body: parsed as unknown };
	}
}
