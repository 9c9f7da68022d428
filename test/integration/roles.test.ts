/**
 * The role matrix, generated from the route table the api serves and the access table
 * (lib/contracts/access.ts): every alias is called as nobody, a viewer, an operator, an admin, a
 * terminal and an API token of scope read, and must be refused (401/403) exactly where the table
 * says so. A route whose action has no ACCESS entry fails here, so no route ships undeclared.
 * Then the socket namespaces, and the ownership rules of design §6.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { ADMIN_PASSWORD, TestTern, type ApiReply } from "../helpers/tern.ts";
import { restCall } from "../support/rest.ts";
import { accessOf, allowed, routeAliases, type Caller, type RouteAlias } from "../support/routes.ts";
import { SOCKET_ACCESS } from "../../lib/contracts/access.ts";

const PASSWORDS = { viewer: "viewer-password-1", operator: "operator-password-1" };
const TERMINAL = "matrix-term";

describe("role matrix", () => {
	let tern: TestTern;
	const tokens = new Map<Caller, string | null>();
	const userIds = new Map<Caller, number>();
	/** Whether API tokens exist on this build (POST /api/tokens answers 201). */
	let apiTokens = false;
	let logouts = 0;

	async function login(username: string, password: string): Promise<string> {
		const reply = await tern.api<{ token: string }>("POST", "/api/auth/login", { username, password }, null);
		assert.equal(reply.status, 200, JSON.stringify(reply.body));
		return reply.body.token;
	}

	async function readToken(): Promise<ApiReply> {
		return tern.api("POST", "/api/tokens", { name: `matrix-read-${logouts++}`, scope: "read" });
	}

	before(async () => {
		tern = await TestTern.start();
		for (const role of ["viewer", "operator"] as const) {
			const made = await tern.api("POST", "/api/users", { username: `m-${role}`, password: PASSWORDS[role], role });
			assert.equal(made.status, 201, JSON.stringify(made.body));
			tokens.set(role, await login(`m-${role}`, PASSWORDS[role]));
		}
		tokens.set("anonymous", null);
		tokens.set("admin", tern.adminToken);
		tokens.set("terminal", await tern.registerTerminal(TERMINAL));
		const users = await tern.api<{ id: number; username: string }[] | { rows: { id: number; username: string }[] }>(
			"GET",
			"/api/users"
		);
		const list = Array.isArray(users.body) ? users.body : users.body.rows;
		for (const user of list) {
			if (user.username === "admin") userIds.set("admin", user.id).set("token:read", user.id);
			if (user.username === "m-viewer") userIds.set("viewer", user.id);
			if (user.username === "m-operator") userIds.set("operator", user.id);
		}
		const token = await readToken();
		apiTokens = token.status === 201;
		if (apiTokens) tokens.set("token:read", (token.body as { token: string }).token);
	});
	after(() => tern.close());

	/** The alias's path with its params filled in for `caller`: its own user or terminal where it names one. */
	function pathFor(alias: RouteAlias, caller: Caller): string {
		return alias.path.replace(/:(\w+)/g, (_m, name: string) => {
			if (name === "version") return "1";
			// Users change themselves (an admin, a user that is not there: it must not remove the last admin).
			if (alias.path.startsWith("/api/users/")) return String((caller !== "admin" && userIds.get(caller)) || 999_999);
			if (alias.path.startsWith("/api/terminals/") && caller === "terminal") return TERMINAL;
			return "matrix-missing";
		});
	}

	/** A token good for one call that may end it (logout): a fresh one of the same kind. */
	async function freshToken(caller: Caller): Promise<string | null> {
		if (caller === "anonymous") return null;
		if (caller === "admin") return login("admin", ADMIN_PASSWORD);
		if (caller === "viewer" || caller === "operator") return login(`m-${caller}`, PASSWORDS[caller]);
		if (caller === "terminal") return tern.registerTerminal(`matrix-logout-${logouts++}`);
		return ((await readToken()).body as { token: string }).token;
	}

	async function callAs(alias: RouteAlias, caller: Caller): Promise<ApiReply> {
		const token = alias.action === "auth.logout" ? await freshToken(caller) : (tokens.get(caller) ?? null);
		const body = alias.method === "GET" ? undefined : {};
		return restCall(tern.url + pathFor(alias, caller), alias.method, body, token);
	}

	it("declares an access level for the action of every route", () => {
		const aliases = routeAliases(tern.broker);
		assert.ok(aliases.length > 50, `only ${aliases.length} routes read`);
		const undeclared = aliases.filter(a => !accessOf(a.action)).map(a => `${a.method} ${a.path} → ${a.action}`);
		assert.deepEqual(undeclared, [], "routes whose action has no ACCESS entry");
	});

	it("refuses every route with 401/403 exactly where the access table says so, for every kind of caller", async t => {
		const callers: Caller[] = ["anonymous", "viewer", "operator", "admin", "terminal"];
		if (apiTokens) callers.push("token:read");
		const wrong: string[] = [];
		const unserved = new Set<string>();
		let calls = 0;
		const served = new Set(
			(tern.broker.registry.getActionList({ onlyAvailable: true }) as { name: string }[]).map(a => a.name)
		);
		for (const alias of routeAliases(tern.broker)) {
			const rule = accessOf(alias.action);
			if (!rule) continue;
			// A route of a service this build does not run answers 503 to everyone, before any check.
			if (!served.has(alias.action)) {
				unserved.add(alias.action);
				continue;
			}
			for (const caller of callers) {
				const reply = await callAs(alias, caller);
				calls++;
				const refused = reply.status === 401 || reply.status === 403;
				const expected = allowed(rule, caller) || (caller === "anonymous" && !alias.authenticated);
				if (reply.status >= 500 || refused === expected)
					wrong.push(
						`${caller} ${alias.method} ${alias.path} (${rule.access}/${rule.scope}): ${reply.status} ${JSON.stringify(reply.body).slice(0, 160)}`
					);
				if (refused && caller !== "anonymous") {
					assert.equal(
						reply.body?.type,
						"FORBIDDEN",
						`${caller} ${alias.method} ${alias.path}: ${JSON.stringify(reply.body)}`
					);
					assert.doesNotMatch(String(reply.body.message), new RegExp(alias.action.replace(".", "\\.")));
				}
			}
		}
		assert.deepEqual(wrong, [], `${wrong.length} of ${calls} calls disagree with the access table`);
		if (unserved.size > 0) t.diagnostic(`routes of actions not served by this build: ${[...unserved].join(", ")}`);
		t.diagnostic(`${calls} calls, ${callers.length} kinds of caller`);
	});

	it("names the role or scope needed when it refuses", async () => {
		const reply = await tern.api("POST", "/api/tasks/purge", {}, tokens.get("operator")!);
		assert.equal(reply.status, 403);
		assert.match(reply.body.message, /'admin' role/);
		const terminal = await tern.api("GET", "/api/tasks", undefined, tokens.get("terminal")!);
		assert.equal(terminal.status, 403);
		assert.match(terminal.body.message, /not terminals/);
		const user = await tern.api("GET", `/api/task/pull?terminalId=${TERMINAL}`, undefined, tokens.get("admin")!);
		assert.equal(user.status, 403);
		assert.match(user.body.message, /for terminals/);
		if (!apiTokens) return;
		const scoped = await tern.api("POST", "/api/task/submit", { terminalId: TERMINAL, type: "x" }, tokens.get("token:read")!);
		assert.equal(scoped.status, 403);
		assert.match(scoped.body.message, /scope 'submit'/);
	});

	describe("socket namespaces", () => {
		function connect(namespace: string, token: string): Promise<{ ok: true } | { ok: false; status: number; type: string }> {
			const socket = io(`${tern.url}${namespace}`, {
				auth: { token },
				transports: ["websocket"],
				reconnection: false,
				forceNew: true
			});
			return new Promise(resolve => {
				socket.once("connect", () => {
					socket.close();
					resolve({ ok: true });
				});
				socket.once("connect_error", (err: Error & { data?: { code: number; type: string } }) => {
					socket.close();
					resolve({ ok: false, status: err.data?.code ?? 0, type: err.data?.type ?? "" });
				});
			});
		}

		it("lets only terminals on /terminal and only users on /client, as SOCKET_ACCESS says", async () => {
			assert.equal(SOCKET_ACCESS["terminal:ack"]?.access, "terminal");
			assert.equal(SOCKET_ACCESS["client:subscribe"]?.access, "viewer");
			for (const role of ["viewer", "operator", "admin"] as const)
				assert.deepEqual(
					await connect("/terminal", tokens.get(role)!),
					{ ok: false, status: 403, type: "FORBIDDEN" },
					role
				);
			assert.deepEqual(await connect("/terminal", tokens.get("terminal")!), { ok: true });
			assert.deepEqual(await connect("/client", tokens.get("terminal")!), { ok: false, status: 403, type: "FORBIDDEN" });
			for (const role of ["viewer", "operator", "admin"] as const)
				assert.deepEqual(await connect("/client", tokens.get(role)!), { ok: true }, role);
			if (apiTokens) assert.deepEqual(await connect("/client", tokens.get("token:read")!), { ok: true });
		});

		it("refuses a user token on /ws/terminal and a terminal token on /ws/client with 403", async () => {
			await assert.rejects(tern.openWs(`/ws/terminal/${TERMINAL}`, tokens.get("viewer")!), { status: 403 });
			const taskId = await tern.submit({ terminalId: TERMINAL, type: "matrix" });
			await assert.rejects(tern.openWs(`/ws/client/${taskId}`, tokens.get("terminal")!), { status: 403 });
			const follower = await tern.openWs(`/ws/client/${taskId}`, tokens.get("viewer")!);
			assert.ok(follower);
		});
	});
});
