/** The run book without a broker: a fake tasks table (what `dispatcher.statuses` reads) and ledger. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { TaskStatus, TaskStatusEvent } from "../../../../lib/contracts.ts";
import type { JobRow } from "../../../../models/job.model.ts";
import type { DispatcherClient } from "../../../../services/scheduler/dispatcher-client.ts";
import { RunBook } from "../../../../services/scheduler/runs.ts";
import type { JobStore } from "../../../../services/scheduler/store.ts";
import { armedJob, type ArmedJob } from "../../../../services/scheduler/types.ts";

const FINAL = new Set(["COMPLETED", "FAILED", "TIMEOUT", "EXPIRED", "CANCELLED"]);

function setup() {
	const tasks = new Map<string, TaskStatus>();
	const reads: string[][] = [];
	const finished: { jobId: string; fireTime: number }[] = [];
	const ended: string[] = [];
	const jobs = new Map<string, ArmedJob>();
	const dispatcher = {
		async finalTasks(ids: string[]) {
			reads.push(ids);
			return new Set(ids.filter(id => !tasks.has(id) || FINAL.has(tasks.get(id)!)));
		}
	} as unknown as DispatcherClient;
	const store = {
		async finished(jobId: string, fireTime: number) {
			finished.push({ jobId, fireTime });
		}
	} as unknown as JobStore;
	const runs = new RunBook({ store, dispatcher, jobs, onEnded: job => ended.push(job.row.id) });
	const job = (id: string) => {
		const row = {
			id,
			schedule: JSON.stringify({ delayAfterFinish: 1000 }),
			task: "{}",
			createdAt: 0,
			startAt: null,
			endAt: null
		} as unknown as JobRow;
		const armed = armedJob(row);
		jobs.set(id, armed);
		return armed;
	};
	const event = (taskId: string, status: TaskStatus): TaskStatusEvent => ({
		taskId,
		status,
		attempt: 1,
		terminalId: "t",
		at: new Date(0).toISOString()
	});
	return { tasks, reads, finished, ended, runs, job, event };
}

describe("scheduler run book", () => {
	it("a final status event ends a one-task run without reading the tasks table", async () => {
		const { tasks, reads, finished, ended, runs, job, event } = setup();
		const a = job("a");
		tasks.set("t1", "PROCESSING");
		runs.begin(a, 100, ["t1"]);
		await runs.onStatuses([event("t1", "PROCESSING")]);
		assert.deepEqual(ended, []);
		tasks.set("t1", "COMPLETED");
		await runs.onStatuses([event("t1", "COMPLETED")]);
		assert.deepEqual(ended, ["a"]);
		assert.deepEqual(finished, [{ jobId: "a", fireTime: 100 }]);
		assert.deepEqual(reads, []);
		assert.equal(a.run, null);
	});

	it("a run of several tasks whose other events were lost ends on the next event, read from the tasks table", async () => {
		const { tasks, reads, ended, runs, job, event } = setup();
		const a = job("a");
		for (const id of ["s0", "s1", "s2"]) tasks.set(id, "COMPLETED");
		runs.begin(a, 100, ["s0", "s1", "s2"]);
		await runs.onStatuses([event("s0", "COMPLETED")]);
		assert.deepEqual(reads, [["s1", "s2"]]);
		assert.deepEqual(ended, ["a"]);
	});

	it("with no event at all, check() ends the runs whose tasks are final and keeps the others, in one read", async () => {
		const { tasks, reads, ended, runs, job } = setup();
		const [a, b] = [job("a"), job("b")];
		tasks.set("ta", "FAILED");
		tasks.set("tb", "DELIVERED");
		runs.begin(a, 1, ["ta"]);
		runs.begin(b, 2, ["tb"]);
		await runs.check();
		assert.deepEqual(reads, [["ta", "tb"]]);
		assert.deepEqual(ended, ["a"]);
		assert.deepEqual(runs.running(b), ["tb"]);
		// A task the table no longer has (purged) counts as ended too.
		tasks.delete("tb");
		await runs.check();
		assert.deepEqual(ended, ["a", "b"]);
	});

	it("a run ends once, whoever notices first; a run replaced meanwhile is not ended", async () => {
		const { tasks, ended, finished, runs, job, event } = setup();
		const a = job("a");
		tasks.set("t1", "COMPLETED");
		runs.begin(a, 1, ["t1"]);
		await Promise.all([runs.check(), runs.onStatuses([event("t1", "COMPLETED")]), runs.check()]);
		assert.deepEqual(ended, ["a"]);
		assert.equal(finished.length, 1);

		tasks.set("t2", "COMPLETED");
		runs.begin(a, 2, ["t2"]);
		const checking = runs.check();
		runs.begin(a, 3, ["t3"]); // the next run began while the table was read
		tasks.set("t3", "PENDING");
		await checking;
		assert.deepEqual(ended, ["a"]);
		assert.deepEqual(runs.running(a), ["t3"]);
	});
});
