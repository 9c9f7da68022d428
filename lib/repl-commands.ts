/**
 * Tern's commands for the Moleculer REPL (`npm run dev`, and `npm run repl` against a cluster).
 * Each prints a table and returns the data it printed, so tests can call the actions directly.
 */
import type { ServiceBroker } from "moleculer";
import { call, type ParamsOf } from "./actions.ts";
import type { TaskBody } from "./contracts.ts";
import { MAX_JSON_DEPTH, tooDeep } from "./bounded.ts";
import { Errors, toErrorPayload } from "./errors.ts";

interface Args {
	options: Record<string, string | boolean | undefined>;
	[name: string]: unknown;
}

export interface ReplCommand {
	command: string;
	description: string;
	alias?: string[];
	options?: { option: string; description: string }[];
	action(broker: ServiceBroker, args: Args): Promise<unknown>;
}

/** The payload typed after a command: JSON, bounded in depth as a REST body is, or else the text itself. */
function parsePayload(text: unknown): unknown {
	if (typeof text !== "string" || text === "") return undefined;
	let value: unknown;
	try {
		value = JSON.parse(text);
	} catch {
		return text;
	}
	// The body of a REST submit is one level; the payload in it may nest one level less.
	if (tooDeep(value, MAX_JSON_DEPTH - 1)) throw Errors.tooDeep("payload", MAX_JSON_DEPTH - 1);
	return value;
}

const commands: ReplCommand[] = [
	{
		command: "reconcile",
		description: "Run the consistency check now and repair what it finds",
		async action(broker) {
			const report = await call(broker, "monitor.reconcile", {});
			console.table(
				report.checks.map(c => ({ check: c.name, found: c.found, repaired: c.repaired, samples: c.samples.join(" ") }))
			);
			console.log(`${report.found} found, ${report.repaired} repaired in ${report.tookMs} ms`);
			if (report.unanswered.length > 0) console.log(`No answer from ${report.unanswered.join(", ")}`);
			return report;
		}
	},
	{
		command: "terminals",
		description: "List terminals with their status, labels and activity",
		alias: ["tl"],
		options: [{ option: "-s, --status <status>", description: "online, offline or disabled" }],
		async action(broker, args) {
			const status = args.options.status as string | undefined;
			const terminals = await call(broker, "terminals.list", status ? { status } : {});
			console.table(
				terminals.map(t => ({
					id: t.id,
					status: t.status,
					labels: JSON.stringify(t.labels),
					concurrency: t.concurrency,
					lastActiveAt: t.lastActiveAt ?? "",
					node: t.nodeID ?? ""
				}))
			);
			return terminals;
		}
	},
	{
		command: "tasks",
		description: "List recent tasks, newest first",
		options: [
			{ option: "-s, --status <status>", description: "filter by status (comma separated)" },
			{ option: "-t, --terminal <id>", description: "filter by terminal" },
			{ option: "-n, --limit <n>", description: "how many (default 20)" }
		],
		async action(broker, args) {
			const params: ParamsOf<"dispatcher.list"> = { pageSize: Number(args.options.limit ?? 20) };
			if (args.options.status) params.status = String(args.options.status).toUpperCase();
			if (args.options.terminal) params.terminalId = String(args.options.terminal);
			const page = await call(broker, "dispatcher.list", params);
			console.table(
				page.rows.map(t => ({
					taskId: t.taskId,
					status: t.status,
					type: t.type,
					terminal: t.terminalId ?? "",
					priority: t.priority,
					attempt: t.attempt,
					createdAt: t.createdAt
				}))
			);
			console.log(`${page.rows.length} of ${page.total}`);
			return page;
		}
	},
	{
		command: "task <taskId>",
		description: "Show one task in full",
		async action(broker, args) {
			const task = await call(broker, "dispatcher.get", { id: String(args.taskId) });
			console.log(JSON.stringify(task, null, 2));
			return task;
		}
	},
	{
		command: "submit <terminalId> <type> [payload]",
		description: "Submit a task to a terminal; payload is JSON (or a plain string)",
		options: [
			{ option: "-p, --priority <n>", description: "0-9, default 5" },
			{ option: "--timeout <s>", description: "processing timeout in seconds" }
		],
		async action(broker, args) {
			const body: TaskBody = { terminalId: String(args.terminalId), type: String(args.type) };
			const payload = parsePayload(args.payload);
			if (payload !== undefined) body.payload = payload;
			if (args.options.priority !== undefined) body.priority = Number(args.options.priority);
			if (args.options.timeout !== undefined) body.timeout = Number(args.options.timeout);
			const result = await call(broker, "dispatcher.submit", body);
			console.log(`Submitted ${result.taskId}`);
			return result;
		}
	},
	{
		command: "cancel <taskId>",
		description: "Cancel a task",
		async action(broker, args) {
			const task = await broker.call("dispatcher.cancel", { id: String(args.taskId) });
			console.log(JSON.stringify(task, null, 2));
			return task;
		}
	},
	{
		command: "jobs",
		description: "List jobs with their schedule and next fire time",
		async action(broker) {
			const page = await call(broker, "scheduler.list", {
				pageSize: 100
			});
			console.table(
				page.rows.map(j => ({
					id: j.id,
					name: j.name,
					schedule: JSON.stringify(j.schedule),
					status: j.status,
					next: j.nextFireTimes[0] ?? ""
				}))
			);
			console.log(`${page.rows.length} of ${page.total}`);
			return page;
		}
	},
	{
		command: "job <jobId>",
		description: "Show a job and its latest ledger rows",
		async action(broker, args) {
			const id = String(args.jobId);
			const job = await call(broker, "scheduler.get", { id });
			const history = await call(broker, "scheduler.history", {
				id,
				pageSize: 10
			});
			console.log(JSON.stringify(job, null, 2));
			console.table(history.rows);
			return { job, history };
		}
	},
	{
		command: "fire <jobId>",
		description: "Run a job now",
		async action(broker, args) {
			const run = await call(broker, "scheduler.execute", { id: String(args.jobId) });
			console.log(`Fired: ${run.taskIds.join(", ")}`);
			return run;
		}
	}
];

/**
 * A command whose ordinary failures (a mistake of the caller's, a service briefly away) print as
 * one line, message and type, and resolve; the REPL would otherwise log them with a stack trace.
 * A genuine internal error is thrown on, stack and all, because that is where the stack helps.
 */
function printingErrors(command: ReplCommand): ReplCommand {
	return {
		...command,
		async action(broker, args) {
			try {
				return await command.action(broker, args);
			} catch (err) {
				const payload = toErrorPayload(err);
				if (payload.type === "INTERNAL_ERROR" || payload.code === 500) throw err;
				console.error(`${payload.message} (${payload.type})`);
				return { error: { type: payload.type, message: payload.message } };
			}
		}
	};
}

export const replCommands: ReplCommand[] = commands.map(printingErrors);
