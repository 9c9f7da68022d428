/**
 * Fuzzing, with fast-check: thousands of malformed and hostile inputs — oversized strings, deep
 * JSON, wrong types, SQL-ish text, path traversal, prototype keys, NUL characters, 10,000
 * character ids — against every REST route (read from the route table, with every kind of
 * caller's token) and every socket event (socket.io `/terminal` and `/client`, raw WebSocket).
 * None may answer 5xx, the process must keep answering, and a refused input must change nothing:
 * the counts of tasks, jobs, terminals, users and scripts are the same before and after it.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { io, type Socket } from "socket.io-client";
import { TestTern, type RawSocket } from "../helpers/tern.ts";
import { restCall } from "../support/rest.ts";
import { routeAliases, type RouteAlias } from "../support/routes.ts";
import { FIELDS, HOSTILE_KEYS, hostileBody, hostileQuery, hostileSegment, hostileValue } from "../support/hostile.ts";

/** Runs per route (each with a caller picked at random) and per socket event. */
const RUNS_PER_ROUTE = 30;
const RUNS_PER_EVENT = 100;

/**
 * Routes whose allowed calls have effects that outlast the call and would blind the rest of the
 * run (a logout revokes the token in use, a user change may disable the admin, a configuration
 * change may set the rate limit to 1): fuzzed only with callers they refuse.
 */
const LASTING = new Set(["auth.logout", "auth.updateUser", "monitor.updateConfig", "auth.removeUser", "auth.revokeToken"]);

interface SocketAnswer {
	ok: boolean;
	error?: { code: number; message: string };
}

/**
 * Emits `event` and resolves with its acknowledgement, or with the `error` event the server
 * sends instead (an unknown event is refused without one), or undefined after two seconds.
 */
function ask(socket: Socket, event: string, message: unknown): Promise<SocketAnswer | undefined> {
	return new Promise(resolve => {
		const done = (answer: SocketAnswer | undefined) => {
			clearTimeout(timer);
			socket.off("error", onError);
			resolve(answer);
		};
		const onError = (error: SocketAnswer["error"]) => done({ ok: false, error });
		const timer = setTimeout(() => done(undefined), 2000);
		socket.on("error", onError);
		socket.emit(event, message, (reply: SocketAnswer) => done(reply));
	});
}

type FuzzCaller = "anonymous" | "viewer" | "operator" | "admin" | "terminal";
const CALLERS: FuzzCaller[] = ["anonymous", "viewer", "operator", "admin", "terminal"];

describe("fuzz", { timeout: 240_000 }, () => {
	let tern: TestTern;
	const tokens = new Map<FuzzCaller, string | null>();
	let cases = 0;

	/** The counts a refused input must leave as they were. */
	async function counts(): Promise<string> {
		const n = async (service: string) =>
			(tern.broker.getLocalService(service) as unknown as { model: { count(): Promise<number> } }).model.count();
		return JSON.stringify([
			await n("dispatcher"),
			await n("scheduler"),
			await n("terminals"),
			await n("auth"),
			await n("scripts")
		]);
	}

	before(async () => {
		tern = await TestTern.start();
		for (const role of ["viewer", "operator"] as const) {
			await tern.api("POST", "/api/users", { username: `fz-${role}`, password: `fz-${role}-password`, role });
			const login = await tern.api(
				"POST",
				"/api/auth/login",
				{ username: `fz-${role}`, password: `fz-${role}-password` },
				null
			);
			tokens.set(role, login.body.token);
		}
		tokens.set("anonymous", null);
		tokens.set("admin", tern.adminToken);
		tokens.set("terminal", await tern.registerTerminal("fz-term", { labels: { zone: "a" } }));
		// Something for the routes to find: a task, a paused job (it must not fire during the run), a script.
		await tern.submit({ terminalId: "fz-term", type: "seed" });
		await tern.api("POST", "/api/jobs", {
			name: "fz-job",
			schedule: { every: 60_000 },
			task: { terminalId: "fz-term", type: "seed" },
			enabled: false
		});
		await tern.api("POST", "/api/scripts", { name: "fz-script", interpreter: "sh", body: "true" });
	});
	after(async () => {
		await tern.close();
	});

	async function stillAnswers(): Promise<void> {
		assert.equal((await tern.api("GET", "/api/system/status")).status, 200, "the server still answers");
	}

	function served(): Set<string> {
		return new Set((tern.broker.registry.getActionList({ onlyAvailable: true }) as { name: string }[]).map(a => a.name));
	}

	it(`answers ${RUNS_PER_ROUTE} hostile requests per REST route, from every kind of caller, without a 5xx or a refused change`, async t => {
		const actions = served();
		const aliases = routeAliases(tern.broker).filter(a => actions.has(a.action));
		assert.ok(aliases.length > 50);
		const failures: string[] = [];
		for (const alias of aliases) {
			const callers = LASTING.has(alias.action) ? (["anonymous", "terminal"] as FuzzCaller[]) : CALLERS;
			const request = fc.record({
				caller: fc.constantFrom(...callers),
				segments: fc.array(hostileSegment, { minLength: 3, maxLength: 3 }),
				query: hostileQuery,
				body: alias.method === "GET" ? fc.constant(undefined) : fc.option(hostileBody, { nil: undefined, freq: 6 })
			});
			await fc
				.assert(
					fc.asyncProperty(request, async ({ caller, segments, query, body }) => {
						cases++;
						let i = 0;
						const path = alias.path.replace(/:\w+/g, () => segments[i++]!);
						const before = await counts();
						const reply = await restCall(
							`${tern.url}${path}${query ? `?${query}` : ""}`,
							alias.method,
							body,
							tokens.get(caller) ?? null
						);
						const what = `${caller} ${alias.method} ${path.slice(0, 120)}?${query.slice(0, 120)} ${String(body).slice(0, 200)}`;
						if (reply.status >= 500)
							failures.push(`${what} → ${reply.status} ${JSON.stringify(reply.body).slice(0, 300)}`);
						if (reply.status >= 400 && (await counts()) !== before)
							failures.push(`${what} → ${reply.status} yet changed the counts`);
						const text = JSON.stringify(reply.body);
						if (reply.status >= 400 && /"nodeID"|"action":"[a-z]+\.[a-zA-Z]+"/.test(text))
							failures.push(`${what} → names an internal: ${text.slice(0, 300)}`);
						return failures.length === 0;
					}),
					{ numRuns: RUNS_PER_ROUTE, endOnFailure: true, seed: 20261203 + aliases.indexOf(alias) }
				)
				.catch((err: Error) => failures.push(`${route(alias)}: ${err.message.split("\n")[0]}`));
			if (failures.length > 0) break;
		}
		assert.deepEqual(failures, []);
		await stillAnswers();
		t.diagnostic(`${cases} hostile inputs so far`);
	});

	const route = (alias: RouteAlias) => `${alias.method} ${alias.path}`;

	it(`answers ${RUNS_PER_EVENT} hostile messages per socket.io /terminal event without a 5xx, and changes nothing`, async t => {
		const terminal = await tern.connectTerminal("fz-term", tokens.get("terminal")!);
		const task = await terminal.nextTask();
		const failures: string[] = [];
		for (const event of ["ack", "progress", "result", "heartbeat", "task", "unknown-event"]) {
			await fc
				.assert(
					fc.asyncProperty(
						fc.oneof(
							hostileValue,
							fc.dictionary(fc.constantFrom(...FIELDS, ...HOSTILE_KEYS), hostileValue, { maxKeys: 6 }),
							// The real task, with hostile extras: the ids right, the rest wrong.
							fc
								.dictionary(fc.constantFrom(...FIELDS, ...HOSTILE_KEYS), hostileValue, { maxKeys: 3 })
								.map(extra => ({
									taskId: task.taskId,
									attempt: task.attempt,
									...extra,
									status: "maybe"
								}))
						),
						async message => {
							cases++;
							const before = await counts();
							const answer = await ask(terminal.socket, event, message);
							const what = `${event} ${JSON.stringify(message)?.slice(0, 200)}`;
							if (answer?.error && answer.error.code >= 500)
								failures.push(`${what} → ${JSON.stringify(answer.error)}`);
							if (answer?.ok === false && (await counts()) !== before)
								failures.push(`${what} → refused yet changed the counts`);
							if (!terminal.socket.connected) failures.push(`${what} → the connection was dropped`);
							return failures.length === 0;
						}
					),
					{ numRuns: RUNS_PER_EVENT, endOnFailure: true, seed: 7 }
				)
				.catch((err: Error) => failures.push(`${event}: ${err.message.split("\n").slice(0, 3).join(" ")}`));
		}
		assert.deepEqual(failures, []);
		assert.equal((await tern.query(task.taskId)).status, "DELIVERED", "no hostile message took the task");
		terminal.close();
		await stillAnswers();
		t.diagnostic(`${cases} hostile inputs so far`);
	});

	it(`answers ${RUNS_PER_EVENT} hostile /client subscribe and unsubscribe messages without a 5xx`, async t => {
		const socket: Socket = io(`${tern.url}/client`, {
			auth: { token: tern.adminToken },
			transports: ["websocket"],
			reconnection: false,
			forceNew: true
		});
		await new Promise<void>((resolve, reject) => {
			socket.once("connect", resolve);
			socket.once("connect_error", reject);
		});
		const failures: string[] = [];
		for (const event of ["subscribe", "unsubscribe"])
			await fc
				.assert(
					fc.asyncProperty(fc.oneof(hostileValue, fc.record({ taskId: hostileValue })), async message => {
						cases++;
						const answer = await ask(socket, event, message);
						if (answer?.error && answer.error.code >= 500)
							failures.push(`${event} ${JSON.stringify(message)?.slice(0, 200)} → ${JSON.stringify(answer.error)}`);
						if (!socket.connected) failures.push("the connection was dropped");
						return failures.length === 0;
					}),
					{ numRuns: RUNS_PER_EVENT, endOnFailure: true, seed: 11 }
				)
				.catch((err: Error) => failures.push(`${event}: ${err.message.split("\n").slice(0, 3).join(" ")}`));
		socket.close();
		assert.deepEqual(failures, []);
		await stillAnswers();
		t.diagnostic(`${cases} hostile inputs so far`);
	});

	it(`answers ${RUNS_PER_EVENT * 2} hostile raw WebSocket messages without a 5xx, and changes nothing`, async t => {
		const ws: RawSocket = await tern.openWs("/ws/terminal/fz-ws", await tern.registerTerminal("fz-ws"));
		const failures: string[] = [];
		const text = fc.oneof(
			hostileBody,
			fc
				.tuple(
					fc.constantFrom("ack", "progress", "result", "heartbeat", "task", "bogus"),
					fc.dictionary(fc.constantFrom(...FIELDS, ...HOSTILE_KEYS), hostileValue, { maxKeys: 5 })
				)
				.map(([type, fields]) => JSON.stringify({ ...fields, type }))
		);
		await fc
			.assert(
				fc.asyncProperty(text, async message => {
					cases++;
					const before = await counts();
					ws.send(message);
					// Every message but a heartbeat is answered, with an error when refused.
					if (!message.includes('"type":"heartbeat"') || message.length > 2000) {
						const answer = await ws.next(undefined, 2000).catch(() => undefined);
						if (answer?.code >= 500) failures.push(`${message.slice(0, 200)} → ${JSON.stringify(answer)}`);
						if (answer?.type === "error" && (await counts()) !== before)
							failures.push(`${message.slice(0, 200)} → refused yet changed the counts`);
					}
					return failures.length === 0;
				}),
				{ numRuns: RUNS_PER_EVENT * 2, endOnFailure: true, seed: 13 }
			)
			.catch((err: Error) => failures.push(`ws: ${err.message.split("\n").slice(0, 3).join(" ")}`));
		assert.deepEqual(failures, []);
		ws.send({ type: "heartbeat" });
		await ws.close();
		await stillAnswers();
		t.diagnostic(`${cases} hostile inputs so far`);
	});
});
