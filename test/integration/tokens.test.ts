/**
 * Tokens: what a JWT must be to be taken (HS256, Tern's issuer and audience, a known kid, not
 * expired, not tampered with, not revoked), logout across restarts and nodes, a secret rotated
 * with the old one kept for verification, terminal credentials that expire and rotate with a
 * grace period (API tokens: api-tokens.test.ts).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeJwt, decodeProtectedHeader } from "jose";
import type { ServiceBroker } from "moleculer";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ADMIN_PASSWORD, TestTern, waitFor, type ApiReply } from "../helpers/tern.ts";
import { TestDatabase } from "../helpers/mysql.ts";
import { NATS_URL } from "../support/node-process.ts";
import { restCall } from "../support/rest.ts";
import { confirmedCall, handMadeJwt, unsignedJwt } from "../support/tokens.ts";
import { kidOf } from "../../services/auth/keys.ts";
import { loadConfig } from "../../moleculer.config.ts";
import { startNode } from "../../node.ts";
import { needs } from "../support/servers.ts";

function assertError(reply: ApiReply, status: number, type: string, message?: RegExp): void {
	assert.equal(reply.status, status, `expected ${status} ${type}, got ${reply.status} ${JSON.stringify(reply.body)}`);
	assert.equal(reply.body?.type, type, JSON.stringify(reply.body));
	if (message) assert.match(reply.body.message, message);
}

const secretOf = (tern: TestTern) => readFileSync(join(tern.dataDir, "jwt-secret"), "utf8").trim();

async function login(tern: TestTern, username: string, password: string): Promise<string> {
	const reply = await tern.api<{ token: string }>("POST", "/api/auth/login", { username, password }, null);
	assert.equal(reply.status, 200, JSON.stringify(reply.body));
	return reply.body.token;
}

/** 200 when the token is taken (a call that needs only auth). */
const probe = (tern: TestTern, token: string) => tern.api("GET", "/api/tokens", undefined, token);

describe("JWTs", () => {
	let tern: TestTern;
	let secret: string;
	const admin = { kind: "user", role: "admin", uid: 1 };

	before(async () => {
		tern = await TestTern.start();
		secret = secretOf(tern);
	});
	after(() => tern.close());

	it("signs HS256 with iss, aud, jti, iat, exp and the key's kid", async () => {
		const header = decodeProtectedHeader(tern.adminToken);
		assert.equal(header.alg, "HS256");
		assert.equal(header.kid, kidOf(secret));
		const claims = decodeJwt(tern.adminToken);
		assert.equal(claims.iss, "tern");
		assert.equal(claims.aud, "tern");
		assert.equal(typeof claims.jti, "string");
		assert.ok(claims.exp! > claims.iat!);
		// The hand-made control is taken: what the next tests change is what makes them fail.
		assert.equal((await probe(tern, await handMadeJwt({ secret, claims: admin }))).status, 200);
	});

	it("refuses an expired token", async () => {
		const now = Math.floor(Date.now() / 1000);
		const expired = await handMadeJwt({ secret, claims: admin, iat: now - 7200, exp: now - 60 });
		assertError(await probe(tern, expired), 401, "INVALID_TOKEN", /expired/);
		assertError(await probe(tern, await handMadeJwt({ secret, claims: admin, exp: null })), 401, "INVALID_TOKEN", /exp/);
	});

	it("refuses a tampered token: claims changed or signature swapped", async () => {
		const viewerReply = await tern.api("POST", "/api/users", {
			username: "tamper",
			password: "tamper-pass-1",
			role: "viewer"
		});
		assert.equal(viewerReply.status, 201);
		const token = await login(tern, "tamper", "tamper-pass-1");
		const [head, body, signature] = token.split(".");
		const claims = JSON.parse(Buffer.from(body, "base64url").toString()) as Record<string, unknown>;
		const raised = Buffer.from(JSON.stringify({ ...claims, role: "admin", uid: 1, sub: "admin" })).toString("base64url");
		assertError(await probe(tern, `${head}.${raised}.${signature}`), 401, "INVALID_TOKEN", /signature/);
		const other = (await handMadeJwt({ secret: "another-secret-another-secret-another", kid: kidOf(secret) })).split(".")[2];
		assertError(await probe(tern, `${head}.${body}.${other}`), 401, "INVALID_TOKEN", /signature/);
		assert.equal((await probe(tern, token)).status, 200);
	});

	it("refuses every algorithm but HS256: none, HS512", async () => {
		const now = Math.floor(Date.now() / 1000);
		const claims = { ...admin, sub: "admin", iss: "tern", aud: "tern", jti: "x", iat: now, exp: now + 3600 };
		assertError(await probe(tern, unsignedJwt(claims, kidOf(secret))), 401, "INVALID_TOKEN", /'none'/);
		const hs512 = await handMadeJwt({ secret, claims: admin, alg: "HS512" });
		assertError(await probe(tern, hs512), 401, "INVALID_TOKEN", /'HS512'/);
		// HS512 with a key id-less header, and RS256-looking headers, fare no better.
		assertError(
			await probe(tern, await handMadeJwt({ secret, claims: admin, alg: "HS384", kid: null })),
			401,
			"INVALID_TOKEN"
		);
	});

	it("refuses a wrong audience, a wrong issuer, a missing or unknown kid", async () => {
		assertError(await probe(tern, await handMadeJwt({ secret, claims: admin, aud: "other" })), 401, "INVALID_TOKEN", /aud/);
		assertError(await probe(tern, await handMadeJwt({ secret, claims: admin, aud: null })), 401, "INVALID_TOKEN", /aud/);
		assertError(await probe(tern, await handMadeJwt({ secret, claims: admin, iss: "evil" })), 401, "INVALID_TOKEN", /iss/);
		assertError(await probe(tern, await handMadeJwt({ secret, claims: admin, kid: null })), 401, "INVALID_TOKEN", /kid/);
		assertError(
			await probe(tern, await handMadeJwt({ secret, claims: admin, kid: "no-such-key" })),
			401,
			"INVALID_TOKEN",
			/unknown/
		);
	});

	it("logout revokes exactly the caller's token, at once, though its signature is cached", async () => {
		const token = await login(tern, "admin", ADMIN_PASSWORD);
		const other = await login(tern, "admin", ADMIN_PASSWORD);
		assert.equal((await probe(tern, token)).status, 200, "checked once: now in the verified cache");
		const out = await tern.api("POST", "/api/auth/logout", undefined, token);
		assert.equal(out.status, 200, JSON.stringify(out.body));
		assert.deepEqual(out.body, { ok: true });
		assertError(await probe(tern, token), 401, "INVALID_TOKEN", /revoked/);
		assertError(await tern.api("POST", "/api/auth/logout", undefined, token), 401, "INVALID_TOKEN");
		assert.equal((await probe(tern, other)).status, 200, "another token of the same user still works");
		assertError(await tern.api("POST", "/api/auth/logout", undefined, null), 401, "UNAUTHORIZED");
	});
});

describe("logout and key rotation across restarts", () => {
	let tern: TestTern;
	after(() => tern.close());

	it("a revoked token stays revoked after a restart; a rotated secret keeps older tokens valid", async () => {
		tern = await TestTern.start({ keep: true });
		const oldSecret = secretOf(tern);
		const revoked = await login(tern, "admin", ADMIN_PASSWORD);
		const kept = await login(tern, "admin", ADMIN_PASSWORD);
		const terminalToken = await tern.registerTerminal("rot-jwt");
		assert.equal((await tern.api("POST", "/api/auth/logout", undefined, revoked)).status, 200);

		tern = await tern.restart();
		assertError(await probe(tern, revoked), 401, "INVALID_TOKEN", /revoked/);
		assert.equal((await probe(tern, kept)).status, 200);

		// The secret rotates: the new one signs, the old one still verifies.
		const newSecret = "a-brand-new-secret-of-more-than-32-bytes";
		tern = await tern.restart({ auth: { jwtSecret: newSecret, jwtPreviousSecrets: [oldSecret] } });
		assert.equal(decodeProtectedHeader(tern.adminToken).kid, kidOf(newSecret));
		assert.equal((await probe(tern, kept)).status, 200, "a token of the old key still works");
		assert.equal((await probe(tern, tern.adminToken)).status, 200);
		assert.equal((await tern.api("GET", "/api/task/pull", undefined, terminalToken)).status, 200);
		assertError(await probe(tern, revoked), 401, "INVALID_TOKEN", /revoked/);

		// Once the old secret is dropped, its tokens are refused by kid.
		const fresh = tern.adminToken;
		tern = await tern.restart({ auth: { jwtSecret: newSecret } });
		assertError(await probe(tern, kept), 401, "INVALID_TOKEN", /unknown/);
		assertError(await tern.api("GET", "/api/task/pull", undefined, terminalToken), 401, "INVALID_TOKEN");
		assert.equal((await probe(tern, fresh)).status, 200);
	});
});

describe("logout across nodes", { skip: needs("mariadb", "nats") }, () => {
	let db: TestDatabase;
	const brokers: ServiceBroker[] = [];
	const namespace = `tok-${process.pid}-${Date.now()}`;
	const jwtSecret = "a-cluster-secret-of-more-than-32-bytes-long";

	async function node(id: string, services: string): Promise<string> {
		const config = loadConfig({
			TRANSPORTER: NATS_URL,
			NAMESPACE: namespace,
			NODE_ID: id,
			DB_URI: db.uri,
			JWT_SECRET: jwtSecret,
			SERVICES: services,
			PORT: "0",
			TERN_ADMIN_PASSWORD: ADMIN_PASSWORD,
			LOGLEVEL: "warn"
		});
		const broker = await startNode({
			config,
			settings: { api: { rateLimit: null }, auth: { revocationRefresh: 200 } },
			broker: { logger: false }
		});
		brokers.push(broker);
		const api = broker.getLocalService("api") as unknown as { server: Server };
		return `http://127.0.0.1:${(api.server.address() as AddressInfo).port}`;
	}

	before(async () => {
		db = await TestDatabase.create("tern_tokens");
	});
	after(async () => {
		for (const broker of brokers.reverse()) await broker.stop();
		await db.drop();
	});

	it("a token revoked on one node is refused by every other: announced, and read from the table", async () => {
		const a = await node("tok-a", "api,auth");
		const b = await node("tok-b", "api,auth");
		const loginAt = async (url: string) =>
			(await restCall<{ token: string }>(`${url}/api/auth/login`, "POST", { username: "admin", password: ADMIN_PASSWORD }))
				.body.token;
		const token = await loginAt(a);
		assert.equal((await restCall(`${b}/api/tokens`, "GET", undefined, token)).status, 200, "B takes A's token");
		assert.equal((await restCall(`${a}/api/auth/logout`, "POST", undefined, token)).status, 200);
		await waitFor(
			async () => (await restCall(`${b}/api/tokens`, "GET", undefined, token)).status === 401,
			5000,
			() => "node B to refuse the token revoked on A"
		);

		// A revocation B was never told of (written by a replica whose announcement was lost) is
		// read from the table within the refresh interval.
		const unannounced = await loginAt(a);
		assert.equal((await restCall(`${b}/api/tokens`, "GET", undefined, unannounced)).status, 200);
		const claims = decodeJwt(unannounced);
		await db.query("INSERT INTO revoked_tokens (jti, expiresAt, revokedAt) VALUES (?, ?, ?)", [
			claims.jti,
			claims.exp! * 1000,
			Date.now()
		]);
		await waitFor(
			async () => (await restCall(`${b}/api/tokens`, "GET", undefined, unannounced)).status === 401,
			5000,
			() => "node B to learn the unannounced revocation"
		);

		// A node started later knows both at once.
		const c = await node("tok-c", "api,auth");
		for (const revoked of [token, unannounced]) {
			const reply = await restCall(`${c}/api/tokens`, "GET", undefined, revoked);
			assertError(reply, 401, "INVALID_TOKEN", /revoked/);
		}
	});
});

describe("terminal credentials", () => {
	let tern: TestTern;
	let secret: string;
	const ttl = 3600;

	before(async () => {
		tern = await TestTern.start({ settings: { auth: { terminalTokenTtl: ttl } } });
		secret = secretOf(tern);
	});
	after(() => tern.close());

	const pull = (token: string) => tern.api("GET", "/api/task/pull", undefined, token);

	it("expire after terminalTokenTtl; an expired one is refused at connect and on REST", async () => {
		const token = await tern.registerTerminal("cred-exp");
		const claims = decodeJwt(token);
		assert.equal(claims.exp! - claims.iat!, ttl);
		assert.equal(claims.sub, "cred-exp");

		const now = Math.floor(Date.now() / 1000);
		const expired = await handMadeJwt({
			secret,
			sub: "cred-exp",
			claims: { kind: "terminal", kv: 1 },
			iat: now - ttl - 10,
			exp: now - 10
		});
		assertError(await pull(expired), 401, "INVALID_TOKEN", /expired/);
		await assert.rejects(
			tern.connectTerminal("cred-exp", expired),
			(err: Error & { data?: { type: string; message: string } }) => {
				assert.equal(err.data?.type, "INVALID_TOKEN");
				assert.match(err.data?.message ?? "", /expired/);
				return true;
			}
		);
		assert.equal((await pull(token)).status, 200, "the real credential works");
	});

	it("rotate-key needs a second confirmation and checks graceSeconds", async () => {
		const token = await tern.registerTerminal("cred-confirm");
		const first = await tern.api("POST", "/api/terminals/cred-confirm/rotate-key");
		assert.equal(first.status, 202, JSON.stringify(first.body));
		assert.equal(first.body.confirm.action, "terminals.rotateKey");
		assert.equal(typeof first.body.confirm.token, "string");
		assert.equal((await pull(token)).status, 200, "nothing rotated yet");
		for (const graceSeconds of [-1, 7 * 86_400 + 1, 1.5, "60"])
			assertError(
				await tern.api("POST", "/api/terminals/cred-confirm/rotate-key", { graceSeconds }),
				422,
				"VALIDATION_ERROR",
				/graceSeconds/
			);
	});

	it("with a grace period the previous key works until it ends; without, it dies at once", async () => {
		const v1 = await tern.registerTerminal("cred-grace");
		const url = `${tern.url}/api/terminals/cred-grace/rotate-key`;
		const rotated = await confirmedCall(url, "POST", tern.adminToken, { graceSeconds: 3600 });
		assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
		assert.equal(rotated.body.keyVersion, 2);
		assert.equal(rotated.body.previousKeyVersion, 1);
		assert.ok(Date.parse(rotated.body.previousKeyUntil) > Date.now() + 3500_000);
		const v2 = rotated.body.token as string;
		assert.equal((await pull(v1)).status, 200, "the old key in its grace period");
		assert.equal((await pull(v2)).status, 200);
		const live = await tern.connectTerminal("cred-grace", v1);
		live.close();

		// The grace period ends (as if its hour had passed).
		const terminals = tern.broker.getLocalService("terminals") as unknown as {
			model: { update(values: object, options: object): Promise<unknown> };
		};
		await terminals.model.update({ previousKeyUntil: Date.now() - 1 }, { where: { id: "cred-grace" } });
		await tern.broker.broadcast("terminal.updated", { terminalId: "cred-grace" });
		await waitFor(
			async () => (await pull(v1)).status === 401,
			5000,
			() => "the old key to be refused once its grace has ended"
		);
		assertError(await pull(v1), 401, "INVALID_TOKEN", /rotated/);
		assert.equal((await pull(v2)).status, 200);

		// No grace: the key it replaces dies with the rotation.
		const again = await confirmedCall(url, "POST", tern.adminToken);
		assert.equal(again.status, 200);
		assert.equal(again.body.previousKeyVersion, null);
		assertError(await pull(v2), 401, "INVALID_TOKEN", /rotated/);
		assert.equal((await pull(again.body.token)).status, 200);
	});
});
