/**
 * The HTTP surface's defences: secure headers on every kind of answer, CORS closed unless origins
 * are listed, static files that never leave public/, and Tern's own rate limits (per client
 * address before authentication, per token after it) answering 429 RATE_LIMITED with Retry-After.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { TestTern, waitFor } from "../helpers/tern.ts";

/** A request with its path sent exactly as written (fetch would normalise `..` away). */
function raw(port: number, path: string, headers: Record<string, string> = {}, method = "GET") {
	return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
		const req = http.request({ host: "127.0.0.1", port, path, method, headers }, res => {
			let body = "";
			res.setEncoding("utf8");
			res.on("data", chunk => (body += chunk));
			res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
		});
		req.on("error", reject);
		req.end();
	});
}

function assertSecure(headers: http.IncomingHttpHeaders, what: string): void {
	assert.equal(headers["x-content-type-options"], "nosniff", what);
	assert.equal(headers["x-frame-options"], "DENY", what);
	assert.equal(headers["referrer-policy"], "no-referrer", what);
	const csp = String(headers["content-security-policy"]);
	assert.match(csp, /default-src 'self'/, what);
	assert.match(csp, /frame-ancestors 'none'/, what);
	assert.match(csp, /connect-src 'self' ws:\/\/127\.0\.0\.1:\d+/, what);
	assert.doesNotMatch(csp, /unsafe-inline/, what);
	assert.equal(headers["strict-transport-security"], undefined, `${what}: no HSTS without TLS`);
}

describe("HTTP security: headers, static files, CORS closed by default", () => {
	let tern: TestTern;
	before(async () => (tern = await TestTern.start()));
	after(() => tern.close());

	it("sends the secure headers on REST, errors, static files, /metrics and an unknown path's 404", async () => {
		const auth = { authorization: `Bearer ${tern.adminToken}` };
		const cases: [string, Record<string, string>, number][] = [
			["/api/terminals", auth, 200],
			["/api/terminals", {}, 401],
			["/api/tasks/nope", auth, 404],
			["/", {}, 200],
			["/index.html", {}, 200],
			["/metrics", {}, 200],
			["/no/such/path", {}, 404],
			["/socket.io/?EIO=4&transport=polling", {}, 200]
		];
		for (const [path, headers, status] of cases) {
			const reply = await raw(tern.port, path, headers);
			assert.equal(reply.status, status, `${path}: ${reply.body.slice(0, 200)}`);
			assertSecure(reply.headers, path);
		}
	});

	it("serves public/ with cache headers and never a file outside it", async () => {
		const index = await raw(tern.port, "/index.html");
		assert.equal(index.headers["cache-control"], "no-cache");
		assert.ok(index.headers.etag, "an ETag to revalidate with");
		for (const path of [
			"/../package.json",
			"/%2e%2e/package.json",
			"/%2e%2e%2fpackage.json",
			"/..%2fpackage.json",
			"/assets/..%2f..%2fpackage.json",
			"/..%5cpackage.json",
			"/.%2e/.%2e/package.json"
		]) {
			const reply = await raw(tern.port, path);
			assert.ok(reply.status === 404 || reply.status === 400, `${path}: ${reply.status}`);
			assert.doesNotMatch(reply.body, /"devDependencies"/, path);
			assertSecure(reply.headers, path);
		}
	});

	it("sends no Access-Control-Allow-Origin on REST or socket.io when no origin is listed", async () => {
		const origin = { origin: "https://evil.example" };
		const rest = await raw(tern.port, "/api/version", origin);
		assert.equal(rest.status, 200);
		assert.equal(rest.headers["access-control-allow-origin"], undefined);
		const preflight = await raw(
			tern.port,
			"/api/task/submit",
			{ ...origin, "access-control-request-method": "POST" },
			"OPTIONS"
		);
		assert.equal(preflight.headers["access-control-allow-origin"], undefined);
		const polling = await raw(tern.port, "/socket.io/?EIO=4&transport=polling", origin);
		assert.equal(polling.headers["access-control-allow-origin"], undefined);
		assert.equal(polling.headers["access-control-allow-credentials"], undefined);
	});
});

describe("CORS with TERN_CORS_ORIGINS", () => {
	let tern: TestTern;
	const allowed = "https://console.example.com";
	before(
		async () =>
			(tern = await TestTern.start({ settings: { api: { corsOrigins: [allowed] }, gateway: { corsOrigins: [allowed] } } }))
	);
	after(() => tern.close());

	it("allows exactly the listed origins on REST, preflight included", async () => {
		const ok = await raw(tern.port, "/api/version", { origin: allowed });
		assert.equal(ok.headers["access-control-allow-origin"], allowed);
		assert.equal(ok.headers["access-control-allow-credentials"], undefined);
		const preflight = await raw(
			tern.port,
			"/api/task/submit",
			{ origin: allowed, "access-control-request-method": "POST" },
			"OPTIONS"
		);
		assert.equal(preflight.status, 204);
		assert.equal(preflight.headers["access-control-allow-origin"], allowed);
		assert.match(String(preflight.headers["access-control-allow-headers"]), /Authorization/);
		for (const other of ["https://evil.example", `${allowed}.evil.example`, "https://console.example"]) {
			const reply = await raw(tern.port, "/api/version", { origin: other });
			assert.equal(reply.status, 200);
			assert.equal(reply.headers["access-control-allow-origin"], undefined, other);
		}
	});

	it("allows exactly the listed origins on socket.io", async () => {
		const ok = await raw(tern.port, "/socket.io/?EIO=4&transport=polling", { origin: allowed });
		assert.equal(ok.headers["access-control-allow-origin"], allowed);
		const other = await raw(tern.port, "/socket.io/?EIO=4&transport=polling", { origin: "https://evil.example" });
		assert.notEqual(other.headers["access-control-allow-origin"], "https://evil.example");
		assert.ok(!other.headers["access-control-allow-origin"], "no origin allowed");
	});
});

describe("REST rate limits", () => {
	let tern: TestTern;
	before(
		async () =>
			(tern = await TestTern.start({
				// A window far longer than the test: nothing is let through again by time passing.
				settings: { api: { requestLimits: { address: 1000, token: 5, window: 60_000 } } }
			}))
	);
	after(() => tern.close());

	it("limits each token on its own, with 429 RATE_LIMITED and Retry-After", async () => {
		const viewer = await tern.api("POST", "/api/users", { username: "ratey", password: "ratey-password-1", role: "viewer" });
		assert.equal(viewer.status, 201, JSON.stringify(viewer.body));
		const login = await tern.api<{ token: string }>(
			"POST",
			"/api/auth/login",
			{ username: "ratey", password: "ratey-password-1" },
			null
		);
		// The admin has used 1 of its 5 (the user above); 4 more pass, the 6th is refused.
		for (let i = 0; i < 4; i++) assert.equal((await tern.api("GET", "/api/terminals")).status, 200, `call ${i}`);
		const refused = await tern.api("GET", "/api/terminals");
		assert.equal(refused.status, 429);
		assert.equal(refused.body.type, "RATE_LIMITED");
		const retryAfter = Number(refused.headers.get("retry-after"));
		assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
		assert.equal(refused.body.data.retryAfter, retryAfter);
		// Another token from the same address is not held back by the first one's limit.
		assert.equal((await tern.api("GET", "/api/terminals", undefined, login.body.token)).status, 200);
	});
});

describe("REST rate limit per client address", () => {
	let tern: TestTern;
	let now = 1_000_000;
	before(async () => {
		// The limits' clock, moved by the test rather than waited for.
		const clock = () => now;
		tern = await TestTern.start({ settings: { api: { requestLimits: { address: 3, token: 0, window: 1000, clock } } } });
	});
	after(() => tern.close());

	it("refuses an address past its limit before authentication, and lets it in again after the window", async () => {
		// TestTern.start's login took the first of the window that began then; a new window starts now.
		now += 5000;
		for (let i = 0; i < 3; i++) assert.equal((await tern.api("GET", "/api/version", undefined, null)).status, 200);
		const refused = await tern.api("GET", "/api/terminals", undefined, "not-even-a-token");
		assert.equal(refused.status, 429, "refused before the token is looked at");
		assert.equal(refused.body.type, "RATE_LIMITED");
		assert.equal(refused.headers.get("retry-after"), "1");
		assertSecure(
			Object.fromEntries(refused.headers.entries()) as http.IncomingHttpHeaders,
			"a 429 carries the secure headers"
		);
		now += 999;
		assert.equal((await tern.api("GET", "/api/version", undefined, null)).status, 429, "still within the window");
		now += 1;
		assert.equal((await tern.api("GET", "/api/version", undefined, null)).status, 200, "a new window");
	});

	it("follows the run-time setting rateLimit (PUT /api/system/config), 0 lifting it", async () => {
		now += 5000;
		const put = await tern.api("PUT", "/api/system/config", { rateLimit: 0 });
		assert.equal(put.status, 200, JSON.stringify(put.body));
		const api = tern.broker.getLocalService("api") as unknown as { guard: { byAddress: { limit: number } } };
		await waitForLimit(() => api.guard.byAddress.limit === 0);
		for (let i = 0; i < 10; i++) assert.equal((await tern.api("GET", "/api/version", undefined, null)).status, 200);
		now += 5000;
		assert.equal((await tern.api("PUT", "/api/system/config", { rateLimit: 2 })).status, 200);
		await waitForLimit(() => api.guard.byAddress.limit === 2);
		now += 5000;
		await tern.api("GET", "/api/version", undefined, null);
		await tern.api("GET", "/api/version", undefined, null);
		assert.equal((await tern.api("GET", "/api/version", undefined, null)).status, 429);
	});
});

/** The setting reaches the api through an event, which has no listener to wait on here. */
function waitForLimit(condition: () => boolean): Promise<void> {
	return waitFor(condition, 2000, () => "the api to apply the new rateLimit");
}
