/** The cron jobs of TernClient (`tern.jobs`): create, read, change, run now, pause, remove. */
import type { JobSummary, TaskBody } from "../lib/contracts.ts";
import type { JobBody } from "../services/scheduler/params.ts";

/** What a job is created with: a name, a schedule and the task each fire submits. */
export type JobInput = Omit<JobBody, "task"> & { task: TaskBody };

/** A job as the API shows it: its fields, its status and its next fire times. */
export type JobView = JobSummary & Omit<JobInput, "name" | "schedule"> & Record<string, unknown>;

export interface JobPage {
	rows: JobView[];
	total: number;
	page: number;
	pageSize: number;
}

interface Requester {
	request<T>(method: string, path: string, options?: { body?: unknown; query?: Record<string, unknown> }): Promise<T>;
	confirmed<T>(method: string, path: string): Promise<T>;
}

export class Jobs {
	private readonly client: Requester;

	constructor(client: Requester) {
		this.client = client;
	}

	create(job: JobInput): Promise<JobView> {
		return this.client.request("POST", "/api/jobs", { body: job });
	}

	list(
		filters: { enabled?: boolean; name?: string; search?: string; page?: number; pageSize?: number } = {}
	): Promise<JobPage> {
		return this.client.request("GET", "/api/jobs", { query: filters });
	}

	get(id: string): Promise<JobView> {
		return this.client.request("GET", path(id));
	}

	/** `PUT /api/jobs/:id`: the fields given change, the rest keep their values. */
	update(id: string, changes: Partial<JobInput>): Promise<JobView> {
		return this.client.request("PUT", path(id), { body: changes });
	}

	/** Deletes the job, confirming the deletion as Tern asks. */
	remove(id: string): Promise<unknown> {
		return this.client.confirmed("DELETE", path(id));
	}

	/** Fires the job now, outside its schedule: the fire time it took and the tasks it submitted. */
	execute(id: string): Promise<{ fireTime: string; taskIds: string[] }> {
		return this.client.request("POST", `${path(id)}/execute`);
	}

	pause(id: string): Promise<JobView> {
		return this.client.request("POST", `${path(id)}/pause`);
	}

	resume(id: string): Promise<JobView> {
		return this.client.request("POST", `${path(id)}/resume`);
	}

	/** Each fire and what came of it, newest first. */
	history(
		id: string,
		options: { outcome?: string; page?: number; pageSize?: number } = {}
	): Promise<{ rows: unknown[]; total: number }> {
		return this.client.request("GET", `${path(id)}/history`, { query: options });
	}
}

function path(id: string): string {
	return `/api/jobs/${encodeURIComponent(id)}`;
}
