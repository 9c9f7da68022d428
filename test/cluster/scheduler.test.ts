/**
 * Scheduler replicas for real: three scheduler processes (beside api, cache and a dispatcher,
 * each its own OS process) on NATS and a fresh MariaDB database. 1,000 jobs fire every second
 * for a minute; halfway through one scheduler is killed with SIGKILL. Every fire time must
 * have happened exactly once — one ledger row, FIRED or CAUGHT_UP, and one task — across the
 * takeover, and the takeover time is printed.
 *
 * The jobs' task targets a registered terminal that never connects: tasks just queue, so the
 * load is on scheduling. Every job shares one startAt and endAt, so that all of them exist
 * before the first fire time and the firing stops by itself (the ledger is then final). Their
 * misfire policy is catch_up: a fire time the takeover leaves behind must be fired late, never
 * dropped.
 *
 * TERN_SCHED_TIMELINE=1 prints lateness per fire time; TERN_CLUSTER_LOGS=1 (and
 * TERN_CLUSTER_LOGLEVEL=info) every node's output.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { TestCluster } from "../helpers/cluster.ts";
import { needs } from "../support/servers.ts";

const JOBS = 1000;
/** Fire times per job: startAt, startAt + 1 s, …, startAt + 59 s. */
const SECONDS = 60;
/** The kill, this long after the first fire time (mid-run, just after a second's fires begin). */
const KILL_AFTER_MS = 30_000 + 150;
/** Time allowed to create the jobs before the first fire time. */
const CREATE_BUDGET_MS = 15_000;
/** Every job of the killed replica fires again on another within this, ms. */
const TAKEOVER_LIMIT_MS = 15_000;
const SCHEDULERS = ["sched-1", "sched-2", "sched-3"];
const VICTIM = "sched-2";
const TERMINAL = "sched-offline";
const TASK_TYPE = "sched-tick";

interface LedgerRow {
	jobId: string;
	fireTime: number;
	outcome: string;
	node: string;
	claimedAt: number;
	firedAt: number | null;
	taskIds: string | null;
	detail: string | null;
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** Polls `condition` every `everyMs` (database queries: not in a tight loop). */
async function poll(condition: () => Promise<boolean>, timeoutMs: number, what: () => string, everyMs = 500): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		if (await condition()) return;
		if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what()}`);
		await sleep(everyMs);
	}
}

/** p50/p99/max of a list of ms. */
function spread(values: number[]): string {
	if (values.length === 0) return "none";
	const sorted = [...values].sort((a, b) => a - b);
	const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
	return `p50 ${at(50)} ms, p99 ${at(99)} ms, max ${sorted[sorted.length - 1]} ms (${sorted.length} fires)`;
}

const iso = (t: number) => new Date(t).toISOString();

describe("scheduler replicas on NATS and MariaDB", { timeout: 240_000, skip: needs("mariadb", "nats") }, () => {
	let cluster: TestCluster;

	before(async () => {
		cluster = await TestCluster.start({
			name: "tern-sched",
			nodes: [
				{ id: "api", services: ["api", "auth", "terminals", "audit"] },
				{ id: "cache", services: ["cache"] },
				{ id: "disp-1", services: ["dispatcher"] },
				...SCHEDULERS.map(id => ({ id, services: ["scheduler"] }))
			]
		});
		await cluster.registerTerminal(TERMINAL);
	});

	after(async () => {
		await cluster?.close();
	});

	it(
		`fires ${JOBS} jobs every second exactly once across 3 replicas, one of them killed with SIGKILL halfway`,
		{ timeout: 200_000 },
		async () => {
			// ---------------------------------------------------------------- the jobs
			const createStart = Date.now();
			const startAt = Math.ceil((createStart + CREATE_BUDGET_MS) / 1000) * 1000;
			const endAt = startAt + (SECONDS - 1) * 1000;
			const jobIds: string[] = [];
			let next = 0;
			await Promise.all(
				Array.from({ length: 20 }, async () => {
					while (next < JOBS) {
						const n = next++;
						const reply = await cluster.api<{ id: string }>("POST", "/api/jobs", {
							name: `tick-${n}`,
							schedule: { cron: "* * * * * *" },
							task: { terminalId: TERMINAL, type: TASK_TYPE, payload: { n } },
							misfirePolicy: "catch_up",
							startAt: iso(startAt),
							endAt: iso(endAt)
						});
						assert.equal(reply.status, 201, `create job ${n}: ${JSON.stringify(reply.body)}`);
						jobIds.push(reply.body.id);
					}
				})
			);
			const allCreated = Date.now();
			console.log(
				`[sched] ${JOBS} jobs created through REST in ${allCreated - createStart} ms; ` +
					`fire times ${iso(startAt)} … ${iso(endAt)}`
			);
			assert.ok(allCreated < startAt - 1000, "every job exists before the first fire time");
			const windowStart = Math.max(startAt, Math.ceil(allCreated / 1000) * 1000) + 2000;
			const windowEnd = endAt - 3000;
			const windowSeconds = (windowEnd - windowStart) / 1000 + 1;

			// ---------------------------------------------------------------- distribution
			await sleep(startAt + 4500 - Date.now());
			const early = await cluster.db.query<{ node: string; jobs: number; fires: number }>(
				"SELECT node, COUNT(DISTINCT jobId) AS jobs, COUNT(*) AS fires FROM job_fires GROUP BY node ORDER BY node"
			);
			console.log(
				`[sched] first 4 s of fire times, per replica: ${early.map(r => `${r.node} ${r.jobs} jobs / ${r.fires} fires`).join(", ")}`
			);
			assert.deepEqual(
				early.map(r => r.node),
				SCHEDULERS,
				"each of the 3 replicas fires a share"
			);
			for (const r of early) assert.ok(Number(r.jobs) >= JOBS / 5, `${r.node} fires a fair share (${r.jobs} jobs)`);
			assert.equal(
				early.reduce((n, r) => n + Number(r.jobs), 0),
				JOBS,
				"each job is fired by one replica only"
			);

			// ---------------------------------------------------------------- kill -9
			await sleep(startAt + KILL_AFTER_MS - Date.now());
			const killedAt = Date.now();
			await cluster.node(VICTIM).kill();
			console.log(
				`[sched] ${VICTIM} killed with SIGKILL at ${iso(killedAt)} (${killedAt - startAt} ms after the first fire time)`
			);

			// ---------------------------------------------------------------- the end of the run
			await sleep(endAt + 1000 - Date.now());
			let pending: { claimed: number; rows: number } = { claimed: -1, rows: -1 };
			// Claims left by the killed replica are completed after staleClaimAfter (5 s). On a
			// timeout the assertions below say what is wrong.
			await poll(
				async () => {
					const [row] = await cluster.db.query<{ claimed: number | string; n: number | string }>(
						"SELECT SUM(outcome = 'CLAIMED') AS claimed, COUNT(*) AS n FROM job_fires WHERE fireTime BETWEEN ? AND ?",
						[startAt, endAt]
					);
					pending = { claimed: Number(row.claimed), rows: Number(row.n) };
					return pending.claimed === 0 && pending.rows >= JOBS * SECONDS;
				},
				30_000,
				() => `every fire settled (${pending.rows} ledger rows, ${pending.claimed} still CLAIMED)`
			).catch(err => console.log(`[sched] ${(err as Error).message}`));
			const settledAt = Date.now();

			// ---------------------------------------------------------------- the ledger
			const ledger = (
				await cluster.db.query<LedgerRow>(
					"SELECT jobId, fireTime, outcome, node, claimedAt, firedAt, taskIds, detail FROM job_fires"
				)
			).map(r => ({
				...r,
				fireTime: Number(r.fireTime),
				claimedAt: Number(r.claimedAt),
				firedAt: r.firedAt === null ? null : Number(r.firedAt)
			}));
			const outcomes = new Map<string, number>();
			const byNode = new Map<string, number>();
			for (const r of ledger) {
				outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1);
				byNode.set(r.node, (byNode.get(r.node) ?? 0) + 1);
			}
			console.log(
				`[sched] ledger: ${ledger.length} rows (${JOBS} jobs × ${SECONDS} s = ${JOBS * SECONDS}); ` +
					`outcomes ${[...outcomes].map(([o, n]) => `${o} ${n}`).join(", ")}; ` +
					`by node ${[...byNode].map(([o, n]) => `${o} ${n}`).join(", ")}; all settled ${settledAt - endAt} ms after the last fire time`
			);

			// Takeover: the victim's jobs, fired by another replica after the kill.
			const victimJobs = new Set(ledger.filter(r => r.node === VICTIM).map(r => r.jobId));
			const firstByOther = new Map<string, number>();
			for (const r of ledger)
				if (victimJobs.has(r.jobId) && r.node !== VICTIM && r.claimedAt >= killedAt)
					firstByOther.set(r.jobId, Math.min(firstByOther.get(r.jobId) ?? Infinity, r.claimedAt));
			const takeovers = [...firstByOther.values()].map(t => t - killedAt).sort((a, b) => a - b);
			const lastVictimFire = Math.max(...ledger.filter(r => r.node === VICTIM).map(r => r.fireTime));
			const stale = ledger.filter(r => r.node === VICTIM && r.detail?.includes("first claimant"));
			console.log(
				`[sched] takeover: ${VICTIM} owned ${victimJobs.size} jobs, its last fire time ${iso(lastVictimFire)}; ` +
					`first of them fired by another replica ${takeovers[0]} ms after the kill, all of them within ${takeovers.at(-1)} ms; ` +
					`claims it left unsettled, completed by their new owners: ${stale.length}`
			);
			assert.equal(firstByOther.size, victimJobs.size, "every job of the killed replica was taken over");
			// Moleculer notices the dead node within ~3-5 s (heartbeats); arming its jobs takes a
			// fraction of that. (One job after the other, it took 40 s here.)
			assert.ok(takeovers.at(-1)! <= TAKEOVER_LIMIT_MS, `every job taken over within ${TAKEOVER_LIMIT_MS} ms of the kill`);

			// Exactly once in the window: one row per (job, second), FIRED or CAUGHT_UP.
			const inWindow = ledger.filter(r => r.fireTime >= windowStart && r.fireTime <= windowEnd);
			const byOutcome = (rows: LedgerRow[], outcome: string) => rows.filter(r => r.outcome === outcome).length;
			console.log(
				`[sched] window ${iso(windowStart)} … ${iso(windowEnd)} (${windowSeconds} s): ${inWindow.length} rows of ` +
					`${JOBS * windowSeconds} expected; FIRED ${byOutcome(inWindow, "FIRED")}, CAUGHT_UP ${byOutcome(inWindow, "CAUGHT_UP")}, ` +
					`MISSED ${byOutcome(inWindow, "MISSED")}, CLAIMED ${byOutcome(inWindow, "CLAIMED")}`
			);
			const jobSet = new Set(jobIds);
			const missing: string[] = [];
			const seen = new Set(inWindow.map(r => `${r.jobId}:${r.fireTime}`));
			for (const jobId of jobIds)
				for (let t = windowStart; t <= windowEnd; t += 1000)
					if (!seen.has(`${jobId}:${t}`)) missing.push(`${jobId}@${iso(t)}`);
			assert.deepEqual(missing.slice(0, 10), [], `no fire time without a ledger row (${missing.length} missing)`);
			assert.equal(inWindow.length, JOBS * windowSeconds, "one ledger row per job and second");
			assert.equal(new Set(ledger.map(r => `${r.jobId}:${r.fireTime}`)).size, ledger.length, "no fire time twice");
			assert.ok(
				inWindow.every(r => jobSet.has(r.jobId) && r.fireTime % 1000 === 0),
				"rows only for the jobs' fire times"
			);
			const odd = inWindow.filter(r => r.outcome !== "FIRED" && r.outcome !== "CAUGHT_UP");
			assert.deepEqual(
				odd.slice(0, 5).map(r => `${r.jobId}@${iso(r.fireTime)} ${r.outcome} on ${r.node}: ${r.detail}`),
				[],
				`every fire in the window FIRED or CAUGHT_UP (${odd.length} not)`
			);
			assert.equal(outcomes.get("MISSED") ?? 0, 0, "no fire time MISSED");
			assert.equal(outcomes.get("CLAIMED") ?? 0, 0, "no claim left unsettled");
			assert.ok(
				ledger.every(r => r.fireTime >= startAt && r.fireTime <= endAt),
				"no fire time outside the jobs' startAt … endAt"
			);

			// ---------------------------------------------------------------- the tasks
			const tasks = await cluster.db.query<{ id: string; idempotencyKey: string | null }>(
				"SELECT id, idempotencyKey FROM tasks WHERE type = ?",
				[TASK_TYPE]
			);
			const taskByKey = new Map(tasks.filter(t => t.idempotencyKey).map(t => [t.idempotencyKey!, t.id]));
			const fired = ledger.filter(r => r.outcome === "FIRED" || r.outcome === "CAUGHT_UP");
			const firedKeys = new Set(fired.map(r => `job:${r.jobId}:${r.fireTime}`));
			const withoutTask = fired.filter(r => {
				const taskId = taskByKey.get(`job:${r.jobId}:${r.fireTime}`);
				return taskId === undefined || JSON.stringify([taskId]) !== r.taskIds;
			});
			const withoutFire = tasks.filter(t => !t.idempotencyKey || !firedKeys.has(t.idempotencyKey));
			console.log(
				`[sched] tasks: ${tasks.length} of type ${TASK_TYPE}, ${taskByKey.size} idempotency keys; ` +
					`fires (FIRED + CAUGHT_UP) ${fired.length}; fires without their task ${withoutTask.length}, tasks without a fire ${withoutFire.length}`
			);
			assert.deepEqual(
				withoutTask.slice(0, 5).map(r => `${r.jobId}@${iso(r.fireTime)} ${r.taskIds}`),
				[],
				"every fire has its task (idempotency key job:<jobId>:<fireTime>) and names it"
			);
			assert.deepEqual(
				withoutFire.slice(0, 5).map(t => `${t.id} ${t.idempotencyKey}`),
				[],
				"no task without its ledger row"
			);
			assert.equal(tasks.length, fired.length, "exactly one task per fire");

			// ---------------------------------------------------------------- lateness
			const late = (rows: LedgerRow[]) => rows.filter(r => r.firedAt !== null).map(r => r.firedAt! - r.fireTime);
			// By when the task was committed: the fires the kill caught in flight count as after it.
			const windowFired = inWindow.filter(r => r.outcome === "FIRED" || r.outcome === "CAUGHT_UP");
			const before = windowFired.filter(r => r.firedAt! < killedAt);
			const afterKill = windowFired.filter(r => r.firedAt! >= killedAt);
			console.log(`[sched] lateness (firedAt − fireTime), fired before the kill: ${spread(late(before))}`);
			console.log(`[sched] lateness, fired after the kill: ${spread(late(afterKill))}`);
			console.log(
				`[sched] lateness after the kill, jobs of ${VICTIM}: ${spread(late(afterKill.filter(r => victimJobs.has(r.jobId))))}; ` +
					`the others: ${spread(late(afterKill.filter(r => !victimJobs.has(r.jobId))))}`
			);

			// TERN_SCHED_TIMELINE=1: lateness per fire time, the killed replica's jobs apart.
			if (process.env.TERN_SCHED_TIMELINE === "1") {
				for (let t = startAt; t <= endAt; t += 1000) {
					const rows = ledger.filter(r => r.fireTime === t);
					const v = rows.filter(r => victimJobs.has(r.jobId));
					const o = rows.filter(r => !victimJobs.has(r.jobId));
					console.log(
						`${iso(t)} victim[${spread(late(v))} CU ${byOutcome(v, "CAUGHT_UP")}] others[${spread(late(o))} CU ${byOutcome(o, "CAUGHT_UP")}]`
					);
				}
			}
		}
	);
});
