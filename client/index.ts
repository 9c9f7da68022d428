/** Tern's client SDK: `import { TernClient, NotFoundError } from "tern/client"`. */
export {
	TernClient,
	FINAL,
	fetchTransport,
	type Transport,
	type ClientOptions,
	type RequestOptions,
	type TaskFilters,
	type TaskPage,
	type BatchAnswer
} from "./client.ts";
export type { FollowHandlers, Following } from "./follow.ts";
export type { JobInput, JobView, JobPage } from "./jobs.ts";
export * from "./errors.ts";
