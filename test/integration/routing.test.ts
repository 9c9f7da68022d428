/**
 * Routing by selector: labels pick the candidate terminals, the strategy picks among them
 * (`round_robin`, `random`, `least_busy`, `consistent_hash`) or fans out (`broadcast`,
 * `sharding`). Each test uses labels of its own so that terminals of other tests never match.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestTern, TestTerminal, waitFor } from "../helpers/tern.ts";
import type { TaskView } from "../../lib/contracts.ts";

describe("routing by selector", () => {
	let tern: TestTern;

	before(async () => {
		tern = await TestTern.start();
	});
	after(() => tern.close());

	async function view(taskId: string): Promise<TaskView> {
		return (await tern.api<TaskView>("GET", `/api/tasks/${taskId}`)).body;
	}

	/** Registers and connects each terminal with its labels. */
	async function online(specs: Record<string, Record<string, string> | string[]>, options: { concurrency?: number } = {}) {
		const terminals: Record<string, TestTerminal> = {};
		for (const [id, labels] of Object.entries(specs)) {
			const token = await tern.registerTerminal(id, { labels });
			terminals[id] = await tern.connectTerminal(id, token, options);
		}
		return terminals;
	}

	/** Who holds the task: the terminal it was delivered to, once it is. */
	async function holder(taskId: string): Promise<string> {
		const delivered = await tern.waitForStatus(taskId, "DELIVERED");
		assert.equal(delivered.attempt, 1);
		const terminalId = (await view(taskId)).terminalId;
		assert.ok(terminalId);
		return terminalId;
	}

	/** Waits until every task has reached a terminal, and checks it is the one the server says. */
	async function received(terminals: Record<string, TestTerminal>, taskIds: string[]): Promise<Map<string, string>> {
		const all = () => Object.values(terminals).flatMap(t => t.tasks.map(task => ({ terminal: t.id, task })));
		await TestTerminal.until(
			Object.values(terminals),
			() => taskIds.every(id => all().some(r => r.task.taskId === id)),
			5000,
			() => `all ${taskIds.length} tasks to arrive (have ${all().length})`
		);
		const where = new Map<string, string>();
		for (const id of taskIds) {
			const holders = all().filter(r => r.task.taskId === id);
			assert.equal(holders.length, 1, `task ${id} was pushed once, to one terminal`);
			where.set(id, holders[0].terminal);
			assert.equal(await holder(id), holders[0].terminal);
		}
		return where;
	}

	function closeAll(terminals: Record<string, TestTerminal>): void {
		for (const terminal of Object.values(terminals)) terminal.close();
	}

	it("round_robin takes turns among the matching terminals only", async () => {
		const terminals = await online({
			"rr-eu-1": { region: "eu-rr" },
			"rr-eu-2": { region: "eu-rr" },
			"rr-us-1": { region: "us-rr" }
		});
		const selector = { labels: { region: "eu-rr" }, strategy: "round_robin" as const };
		const taskIds: string[] = [];
		for (let i = 0; i < 6; i++) taskIds.push(await tern.submit({ selector, type: "t", payload: { i } }));
		const where = await received(terminals, taskIds);
		const order = taskIds.map(id => where.get(id)!);
		for (const terminalId of order) assert.ok(terminalId.startsWith("rr-eu-"), `${terminalId} does not match`);
		for (let i = 1; i < order.length; i++) assert.notEqual(order[i], order[i - 1], `alternates: ${order.join(", ")}`);
		assert.equal(order.filter(t => t === "rr-eu-1").length, 3);
		assert.equal(order.filter(t => t === "rr-eu-2").length, 3);
		assert.equal(terminals["rr-us-1"].tasks.length, 0);
		const selectorView = (await view(taskIds[0])).selector;
		assert.deepEqual(selectorView, selector);
		closeAll(terminals);
	});

	it("least_busy picks the matching terminal holding the fewest tasks", async () => {
		const terminals = await online(
			{ "lb-a": { pool: "lb" }, "lb-b": { pool: "lb" }, "lb-c": { pool: "lb" } },
			{ concurrency: 10 }
		);
		// a holds two, b one, c none.
		for (const id of ["lb-a", "lb-a", "lb-b"]) await tern.submit({ terminalId: id, type: "pinned" });
		await TestTerminal.until(
			[terminals["lb-a"], terminals["lb-b"]],
			() => terminals["lb-a"].tasks.length === 2 && terminals["lb-b"].tasks.length === 1
		);
		const selector = { labels: { pool: "lb" }, strategy: "least_busy" as const };

		const first = await tern.submit({ selector, type: "t" });
		assert.equal(await holder(first), "lb-c");
		// c now holds one, like b; two more pinned to c make b the least busy.
		for (let i = 0; i < 2; i++) await tern.submit({ terminalId: "lb-c", type: "pinned" });
		await terminals["lb-c"].until(() => terminals["lb-c"].tasks.length === 3);
		const second = await tern.submit({ selector, type: "t" });
		assert.equal(await holder(second), "lb-b");
		// a: 2, b: 2, c: 3 — a finished task leaves a with 1.
		const done = terminals["lb-a"].tasks[0];
		await terminals["lb-a"].ack(done);
		await terminals["lb-a"].result(done);
		const third = await tern.submit({ selector, type: "t" });
		assert.equal(await holder(third), "lb-a");
		closeAll(terminals);
	});

	it("random only ever picks matching terminals, and uses more than one", async () => {
		const terminals = await online(
			{ "rnd-1": { zone: "rnd" }, "rnd-2": { zone: "rnd" }, "rnd-x": { zone: "other-rnd" } },
			{ concurrency: 50 }
		);
		const taskIds: string[] = [];
		for (let i = 0; i < 24; i++)
			taskIds.push(await tern.submit({ selector: { labels: { zone: "rnd" }, strategy: "random" as const }, type: "t" }));
		const where = await received(terminals, taskIds);
		const used = new Set(where.values());
		assert.ok(!used.has("rnd-x"), "the non-matching terminal got nothing");
		assert.deepEqual([...used].sort(), ["rnd-1", "rnd-2"]);
		assert.equal(terminals["rnd-x"].tasks.length, 0);
		closeAll(terminals);
	});

	it("consistent_hash sends one key always to the same terminal and spreads different keys", async () => {
		const terminals = await online(
			{ "ch-1": { ring: "ch" }, "ch-2": { ring: "ch" }, "ch-3": { ring: "ch" }, "ch-other": { ring: "not-ch" } },
			{ concurrency: 100 }
		);
		const selectorFor = (key: string) => ({ labels: { ring: "ch" }, strategy: "consistent_hash" as const, key });

		const same: string[] = [];
		for (let i = 0; i < 6; i++) same.push(await tern.submit({ selector: selectorFor("customer-17"), type: "t" }));
		const sameWhere = await received(terminals, same);
		assert.equal(new Set(sameWhere.values()).size, 1, `one terminal for one key: ${[...sameWhere.values()].join(", ")}`);

		const spread: string[] = [];
		for (let k = 0; k < 20; k++) spread.push(await tern.submit({ selector: selectorFor(`key-${k}`), type: "t" }));
		const spreadWhere = await received(terminals, spread);
		const used = new Set(spreadWhere.values());
		assert.ok(used.size > 1, `different keys spread: ${[...used].join(", ")}`);
		assert.ok(!used.has("ch-other"));

		// Each key again: each lands where it did the first time.
		for (let k = 0; k < 20; k++) {
			const again = await tern.submit({ selector: selectorFor(`key-${k}`), type: "t" });
			assert.equal(await holder(again), spreadWhere.get(spread[k]), `key-${k} moved`);
		}

		const missingKey = await tern.api("POST", "/api/task/submit", {
			selector: { labels: { ring: "ch" }, strategy: "consistent_hash" as const },
			type: "t"
		});
		assert.equal(missingKey.status, 422);
		assert.match(missingKey.body.message, /selector\.key/);
		closeAll(terminals);
	});

	it("broadcast creates one task per matching registered terminal; an offline one gets its own on connect", async () => {
		const terminals = await online({ "bc-1": { fleet: "bc" }, "bc-2": { fleet: "bc" }, "bc-other": { fleet: "not-bc" } });
		const offlineToken = await tern.registerTerminal("bc-3", { labels: { fleet: "bc" } });

		const reply = await tern.api("POST", "/api/task/submit", {
			selector: { labels: { fleet: "bc" }, strategy: "broadcast" as const },
			type: "update",
			payload: { v: 2 }
		});
		assert.equal(reply.status, 201);
		const { taskId, taskIds } = reply.body as { taskId: string; taskIds: string[] };
		assert.equal(taskIds.length, 3);
		assert.equal(new Set(taskIds).size, 3);
		assert.equal(taskId, taskIds[0]);

		const views = await Promise.all(taskIds.map(view));
		assert.deepEqual(views.map(v => v.terminalId).sort(), ["bc-1", "bc-2", "bc-3"]);
		assert.equal(new Set(views.map(v => v.groupId)).size, 1, "one group");
		assert.ok(views[0].groupId);

		for (const id of ["bc-1", "bc-2"]) {
			await terminals[id].until(() => terminals[id].tasks.length === 1);
			assert.deepEqual(terminals[id].tasks[0].payload, { v: 2 });
			assert.equal(terminals[id].tasks[0].shardIndex, undefined);
		}
		const offlineTask = views.find(v => v.terminalId === "bc-3")!;
		assert.equal(offlineTask.status, "PENDING");
		assert.equal(terminals["bc-other"].tasks.length, 0);

		const late = await tern.connectTerminal("bc-3", offlineToken);
		const task = await late.nextTask();
		assert.equal(task.taskId, offlineTask.taskId);
		assert.equal(late.tasks.length, 1);
		for (const id of ["bc-1", "bc-2"]) assert.equal(terminals[id].tasks.length, 1, `${id} received exactly one`);

		const group = (await tern.api("GET", `/api/tasks?groupId=${views[0].groupId}`)).body;
		assert.equal(group.total, 3);
		closeAll(terminals);
		late.close();
	});

	it("sharding gives each online matching terminal one shard, numbered 0..n-1 of n", async () => {
		const terminals = await online({
			"sh-1": { job: "sh" },
			"sh-2": { job: "sh" },
			"sh-3": { job: "sh" },
			"sh-x": { job: "not-sh" }
		});
		await tern.registerTerminal("sh-offline", { labels: { job: "sh" } });

		const reply = await tern.api("POST", "/api/task/submit", {
			selector: { labels: { job: "sh" }, strategy: "sharding" as const },
			type: "scan"
		});
		assert.equal(reply.status, 201);
		const taskIds = reply.body.taskIds as string[];
		assert.equal(taskIds.length, 3, "one shard per online matching terminal");

		const where = await received(terminals, taskIds);
		assert.deepEqual([...where.values()].sort(), ["sh-1", "sh-2", "sh-3"]);
		const shards = ["sh-1", "sh-2", "sh-3"].map(id => {
			assert.equal(terminals[id].tasks.length, 1);
			return terminals[id].tasks[0];
		});
		assert.deepEqual(shards.map(s => s.shardIndex).sort(), [0, 1, 2]);
		for (const shard of shards) assert.equal(shard.shardTotal, 3);
		for (const id of taskIds) {
			const v = await view(id);
			assert.equal(v.shardTotal, 3);
			assert.notEqual(v.terminalId, "sh-offline");
		}
		assert.equal(terminals["sh-x"].tasks.length, 0);
		closeAll(terminals);
	});

	it("leaves a task PENDING while no matching terminal is online and pushes it when one connects", async () => {
		const bystander = await online({ "wait-other": { site: "elsewhere" } });
		const token = await tern.registerTerminal("wait-1", { labels: { site: "wait" } });
		const taskId = await tern.submit({ selector: { labels: { site: "wait" }, strategy: "round_robin" as const }, type: "t" });
		const pending = await view(taskId);
		assert.equal(pending.status, "PENDING");
		assert.equal(pending.terminalId, null);

		const terminal = await tern.connectTerminal("wait-1", token);
		const task = await terminal.nextTask();
		assert.equal(task.taskId, taskId);
		assert.equal(await holder(taskId), "wait-1");
		assert.equal(bystander["wait-other"].tasks.length, 0);
		terminal.close();
		closeAll(bystander);
	});

	it("matches labels given as an array by key, whatever the value", async () => {
		const terminals = await online(
			{ "arr-a100": { gpu: "a100" }, "arr-plain": ["gpu"], "arr-cpu": { cpu: "x86" } },
			{ concurrency: 50 }
		);
		assert.deepEqual((await tern.api("GET", "/api/terminals/arr-plain")).body.labels, { gpu: "true" });

		const taskIds: string[] = [];
		for (let i = 0; i < 6; i++)
			taskIds.push(await tern.submit({ selector: { labels: ["gpu"], strategy: "round_robin" as const }, type: "t" }));
		const where = await received(terminals, taskIds);
		assert.deepEqual([...new Set(where.values())].sort(), ["arr-a100", "arr-plain"]);
		assert.equal(terminals["arr-cpu"].tasks.length, 0);

		const broadcast = await tern.api("POST", "/api/task/submit", {
			selector: { labels: ["gpu"], strategy: "broadcast" as const },
			type: "t"
		});
		assert.equal(broadcast.status, 201);
		const targets = await Promise.all((broadcast.body.taskIds as string[]).map(async id => (await view(id)).terminalId));
		assert.deepEqual(targets.sort(), ["arr-a100", "arr-plain"]);
		closeAll(terminals);
	});

	it("refuses broadcast and sharding that match no registered terminal with 422 NO_MATCHING_TERMINAL", async () => {
		const before = (await tern.api("GET", "/api/tasks")).body.total;
		for (const strategy of ["broadcast", "sharding"]) {
			const reply = await tern.api("POST", "/api/task/submit", {
				selector: { labels: { nothing: "matches-this" }, strategy },
				type: "t"
			});
			assert.equal(reply.status, 422, strategy);
			assert.equal(reply.body.type, "NO_MATCHING_TERMINAL");
			assert.match(reply.body.message, /selector/);
		}
		assert.equal((await tern.api("GET", "/api/tasks")).body.total, before, "nothing was created");
	});

	it("never chooses a disabled terminal", async () => {
		const terminals = await online({ "dis-1": { pool: "dis" }, "dis-2": { pool: "dis" } });
		const disabled = await tern.api("POST", "/api/terminals/dis-1/disable");
		assert.equal(disabled.status, 200);
		assert.equal(disabled.body.status, "disabled");
		// Its session is closed and it is no longer present.
		await terminals["dis-1"].until(() => !terminals["dis-1"].socket.connected);
		await waitFor(async () => (await tern.api("GET", "/api/terminals/dis-1")).body.connectedAt === null);

		const taskIds: string[] = [];
		for (let i = 0; i < 4; i++)
			taskIds.push(
				await tern.submit({ selector: { labels: { pool: "dis" }, strategy: "round_robin" as const }, type: "t" })
			);
		for (const id of taskIds) assert.equal(await holder(id), "dis-2");

		const broadcast = await tern.api("POST", "/api/task/submit", {
			selector: { labels: { pool: "dis" }, strategy: "broadcast" as const },
			type: "t"
		});
		assert.equal(broadcast.status, 201);
		assert.equal(broadcast.body.taskIds.length, 1);
		assert.equal((await view(broadcast.body.taskIds[0])).terminalId, "dis-2");
		const sharding = await tern.api("POST", "/api/task/submit", {
			selector: { labels: { pool: "dis" }, strategy: "sharding" as const },
			type: "t"
		});
		assert.equal(sharding.body.taskIds.length, 1);
		assert.equal((await view(sharding.body.taskIds[0])).terminalId, "dis-2");

		// Nor can it come back while disabled.
		const token = await tern.registerTerminal("dis-3", { labels: { pool: "dis-alone" } });
		await tern.api("POST", "/api/terminals/dis-3/disable");
		await assert.rejects(tern.connectTerminal("dis-3", token), (err: Error & { data?: { type: string } }) => {
			assert.equal(err.data?.type, "TERMINAL_DISABLED");
			return true;
		});
		const alone = await tern.api("POST", "/api/task/submit", {
			selector: { labels: { pool: "dis-alone" }, strategy: "broadcast" as const },
			type: "t"
		});
		assert.equal(alone.status, 422);
		assert.equal(alone.body.type, "NO_MATCHING_TERMINAL");
		assert.equal(terminals["dis-1"].tasks.length, 0);
		closeAll(terminals);
	});
});
