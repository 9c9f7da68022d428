/**
 * The login lockout: consecutive failures lock a username, then an address spraying many
 * usernames; while locked even the right password is refused with 429 and Retry-After. Time is
 * a fake clock handed to auth, so the locks pass without waiting.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_PASSWORD, TestTern, type ApiReply } from "../helpers/tern.ts";

function assertError(reply: ApiReply, status: number, type: string): void {
	assert.equal(reply.status, status, `expected ${status} ${type}, got ${reply.status} ${JSON.stringify(reply.body)}`);
	assert.equal(reply.body?.type, type, JSON.stringify(reply.body));
}

function assertLocked(reply: ApiReply, retryAfter?: number): void {
	assertError(reply, 429, "RATE_LIMITED");
	assert.match(reply.body.message, /failed logins/);
	const header = Number(reply.headers.get("retry-after"));
	assert.ok(header >= 1, `Retry-After is ${reply.headers.get("retry-after")}`);
	assert.equal(reply.body.data.retryAfter, header);
	if (retryAfter !== undefined) assert.equal(header, retryAfter);
}

class FakeClock {
	at = Date.parse("2030-01-01T00:00:00Z");
	readonly now = () => this.at;
	advance(ms: number): void {
		this.at += ms;
	}
}

describe("login lockout per username", () => {
	let tern: TestTern;
	const clock = new FakeClock();

	before(async () => {
		tern = await TestTern.start({ settings: { auth: { clock: clock.now, lockoutAddressThreshold: 1000 } } });
		assert.equal(
			(await tern.api("POST", "/api/users", { username: "lucy", password: "lucy-password-1", role: "viewer" })).status,
			201
		);
	});
	after(() => tern.close());

	const attempt = (username: string, password: string) => tern.api("POST", "/api/auth/login", { username, password }, null);

	it("locks after 5 wrong passwords; while locked the right one gets 429 with Retry-After; after, it works", async () => {
		const answers: number[] = [];
		for (let i = 0; i < 30; i++) answers.push((await attempt("lucy", `wrong-${i}`)).status);
		assert.deepEqual(answers, [...Array(5).fill(401), ...Array(25).fill(429)]);
		assertLocked(await attempt("lucy", "lucy-password-1"), 1);
		// Another user is not locked by lucy's failures.
		assert.equal((await attempt("admin", ADMIN_PASSWORD)).status, 200);

		clock.advance(1001);
		assert.equal((await attempt("lucy", "lucy-password-1")).status, 200);
	});

	it("doubles the lock with each further failure, and a success starts the count over", async () => {
		for (let i = 0; i < 5; i++) assertError(await attempt("lucy", "wrong"), 401, "BAD_CREDENTIALS");
		assertLocked(await attempt("lucy", "wrong"), 1);
		clock.advance(1001);
		assertError(await attempt("lucy", "wrong"), 401, "BAD_CREDENTIALS"); // the 6th: 2 s
		assertLocked(await attempt("lucy", "lucy-password-1"), 2);
		clock.advance(1500);
		assertLocked(await attempt("lucy", "lucy-password-1"), 1);
		clock.advance(501);
		assertError(await attempt("lucy", "wrong"), 401, "BAD_CREDENTIALS"); // the 7th: 4 s
		assertLocked(await attempt("lucy", "lucy-password-1"), 4);
		clock.advance(4001);
		assert.equal((await attempt("lucy", "lucy-password-1")).status, 200);
		// Counted from zero again: four failures lock nothing.
		for (let i = 0; i < 4; i++) assertError(await attempt("lucy", "wrong"), 401, "BAD_CREDENTIALS");
		assert.equal((await attempt("lucy", "lucy-password-1")).status, 200);
	});

	it("never locks longer than the maximum (15 min)", async () => {
		for (let i = 0; i < 25; i++) {
			await attempt("lucy", "wrong");
			clock.advance(16 * 60_000);
		}
		assertError(await attempt("lucy", "wrong"), 401, "BAD_CREDENTIALS");
		const reply = await attempt("lucy", "lucy-password-1");
		assertLocked(reply, 15 * 60);
		clock.advance(15 * 60_000 + 1);
		assert.equal((await attempt("lucy", "lucy-password-1")).status, 200);
	});

	it("a burst of guesses sent at once gets no more than the threshold's worth through", async () => {
		clock.advance(60 * 60_000 + 1);
		const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => attempt("lucy", `burst-${i}`)));
		const statuses = burst.map(reply => reply.status).sort();
		assert.deepEqual(statuses, [...Array(5).fill(401), ...Array(15).fill(429)]);
		clock.advance(1001);
		assert.equal((await attempt("lucy", "lucy-password-1")).status, 200);
	});

	it("locks an unknown username the same way: the answers do not tell which names exist", async () => {
		const answers: number[] = [];
		for (let i = 0; i < 7; i++) answers.push((await attempt("nobody-here", "wrong")).status);
		assert.deepEqual(answers, [401, 401, 401, 401, 401, 429, 429]);
	});
});

describe("login lockout per address", () => {
	let tern: TestTern;
	const clock = new FakeClock();

	before(async () => {
		tern = await TestTern.start({ settings: { auth: { clock: clock.now, lockoutAddressThreshold: 10 } } });
	});
	after(() => tern.close());

	const attempt = (username: string, password: string) => tern.api("POST", "/api/auth/login", { username, password }, null);

	it("catches one address spraying many usernames, even before any one of them is locked", async () => {
		const answers: number[] = [];
		for (let i = 0; i < 15; i++) answers.push((await attempt(`user-${i}`, "Password1")).status);
		assert.deepEqual(answers, [...Array(10).fill(401), ...Array(5).fill(429)]);
		// From this address, even the admin's right password waits.
		assertLocked(await attempt("admin", ADMIN_PASSWORD), 1);

		clock.advance(1001);
		assert.equal((await attempt("admin", ADMIN_PASSWORD)).status, 200);
		// The admin's success does not clear the address's count: the next failure locks it again, longer.
		assertError(await attempt("user-99", "Password1"), 401, "BAD_CREDENTIALS");
		assertLocked(await attempt("user-100", "Password1"), 2);
	});
});
