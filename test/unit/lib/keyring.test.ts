import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Keyring, MissingKeyError, newDataKey, parseDataKeys } from "../../../lib/keyring.ts";
import { deriveKey, SecretBox } from "../../../lib/secret-box.ts";
import {
	checkSecrets,
	openSecrets,
	redactBody,
	redactedSecrets,
	resealEnvelope,
	sameSecrets,
	sealSecrets
} from "../../../lib/task-secrets.ts";
import { describeConfig, loadConfig } from "../../../moleculer.config.ts";

const key = () => randomBytes(32).toString("base64");

describe("keyring", () => {
	const k1 = { id: "k1", key: key() };
	const k2 = { id: "k2", key: key() };

	it("seals with the active key, its id beside the value, a fresh nonce each time", () => {
		const ring = new Keyring([k1]);
		const a = ring.seal("hello", "ctx");
		const b = ring.seal("hello", "ctx");
		assert.match(a, /^enc:v2:k1:[\w-]+:[\w-]+:[\w-]+$/);
		assert.notEqual(a, b);
		assert.equal(ring.open(a, "ctx"), "hello");
		assert.equal(Keyring.kidOf(a), "k1");
	});

	it("opens values of older keys after a rotation, re-seals them with the active one", () => {
		const old = new Keyring([k1]).seal("secret", "ctx");
		const rotated = new Keyring([k2, k1]);
		assert.equal(rotated.open(old, "ctx"), "secret");
		assert.equal(rotated.isCurrent(old), false);
		const moved = rotated.reseal(old, "ctx");
		assert.equal(Keyring.kidOf(moved), "k2");
		assert.equal(new Keyring([k2]).open(moved, "ctx"), "secret");
	});

	it("names the missing key when a value's key is no longer configured", () => {
		const old = new Keyring([k1]).seal("secret", "ctx");
		assert.throws(
			() => new Keyring([k2]).open(old, "ctx"),
			(err: Error) => err instanceof MissingKeyError && err.kid === "k1" && /'k1'/.test(err.message)
		);
	});

	it("refuses a value altered or sealed for another purpose", () => {
		const ring = new Keyring([k1]);
		const sealed = ring.seal("secret", "tasks");
		assert.throws(() => ring.open(sealed, "scripts"));
		const parts = sealed.split(":");
		parts[5] = Buffer.from("other").toString("base64url");
		assert.throws(() => ring.open(parts.join(":"), "tasks"));
	});

	it("still opens the first format (enc:v1, a key derived from the JWT secret)", () => {
		const legacy = deriveKey("jwt-secret", "tern alert channels");
		const v1 = new SecretBox(legacy).seal("hook-secret");
		const ring = new Keyring([k1], legacy);
		assert.equal(ring.open(v1, "anything"), "hook-secret");
		assert.equal(Keyring.kidOf(ring.reseal(v1, "alert-channel")), "k1");
		assert.throws(() => new Keyring([k1]).open(v1, "x"), MissingKeyError);
	});

	it("makes keyed digests that match the same text under any configured key", () => {
		const old = new Keyring([k1]).digest("text");
		const ring = new Keyring([k2, k1]);
		assert.equal(ring.matches(old, "text"), true);
		assert.equal(ring.matches(old, "other"), false);
		assert.notEqual(ring.digest("text"), old);
	});

	it("parses TERN_DATA_KEYS, active first, and refuses malformed ones", () => {
		const keys = parseDataKeys(`k2:${k2.key}, k1:${k1.key}`);
		assert.deepEqual(
			keys.map(k => k.id),
			["k2", "k1"]
		);
		assert.match(newDataKey("k3"), /^k3:[A-Za-z0-9+/]{43}=$/);
		for (const bad of ["", "k1", `k1:${randomBytes(16).toString("base64")}`, `k_1:${k1.key}`, `k1:${k1.key},k1:${k2.key}`])
			assert.throws(() => parseDataKeys(bad), TypeError, bad);
	});

	it("configuration: TERN_DATA_KEYS, else a key generated once into the data dir (0600), else derived in a cluster", () => {
		const dir = mkdtempSync(join(tmpdir(), "tern-keys-"));
		try {
			const fromEnv = loadConfig({
				TERN_DATA_DIR: dir,
				JWT_SECRET: "a-test-secret-of-at-least-32-bytes!",
				TERN_DATA_KEYS: `k9:${k1.key}`
			});
			assert.deepEqual([fromEnv.dataKeys[0].id, fromEnv.dataKeysFrom], ["k9", "env"]);
			assert.equal(describeConfig(fromEnv).dataKeys, "***");
			const first = loadConfig({ TERN_DATA_DIR: dir, JWT_SECRET: "a-test-secret-of-at-least-32-bytes!" });
			assert.equal(first.dataKeysFrom, "file");
			assert.equal(statSync(join(dir, "data-keys")).mode & 0o777, 0o600);
			assert.deepEqual(
				loadConfig({ TERN_DATA_DIR: dir, JWT_SECRET: "a-test-secret-of-at-least-32-bytes!" }).dataKeys,
				first.dataKeys
			);
			assert.match(readFileSync(join(dir, "data-keys"), "utf8"), /^k1:/);
			const cluster = loadConfig({
				TERN_DATA_DIR: dir,
				JWT_SECRET: "a-test-secret-of-at-least-32-bytes!",
				TRANSPORTER: "nats://x:4222"
			});
			assert.deepEqual([cluster.dataKeys[0].id, cluster.dataKeysFrom], ["jwt", "jwt"]);
			assert.throws(
				() =>
					loadConfig({ TERN_DATA_DIR: dir, JWT_SECRET: "a-test-secret-of-at-least-32-bytes!", TERN_DATA_KEYS: "nope" }),
				/TERN_DATA_KEYS/
			);
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});
});

describe("task secrets", () => {
	const k1 = { id: "k1", key: key() };
	const ring = new Keyring([k1]);
	const body = {
		payload: { env: { TOKEN: "t0k", A: 1 }, list: ["x", "hidden"] },
		secrets: { KEY: "v" },
		sensitive: ["env.TOKEN", "list.1"]
	};

	it("redacts the sensitive paths, seals them with the secrets, and restores them for the push", () => {
		checkSecrets(body);
		const sealed = sealSecrets(body, ring);
		assert.deepEqual(sealed.payload, { env: { TOKEN: "***", A: 1 }, list: ["x", "***"] });
		assert.ok(!sealed.envelope!.includes("t0k"));
		assert.deepEqual(redactedSecrets(sealed.envelope), { secrets: { KEY: "***" }, sensitive: ["env.TOKEN", "list.1"] });
		const opened = openSecrets(sealed.envelope!, sealed.payload, ring);
		assert.deepEqual(opened, { payload: body.payload, secrets: { KEY: "v" } });
		assert.deepEqual(body.payload.env.TOKEN, "t0k", "the body itself is left alone");
	});

	it("tells equal secrets from different ones by digest, across a rotation", () => {
		const a = sealSecrets(body, ring).envelope;
		const rotated = new Keyring([{ id: "k2", key: key() }, k1]);
		assert.equal(sameSecrets(a, sealSecrets(body, rotated).envelope, rotated), true);
		assert.equal(sameSecrets(a, sealSecrets({ ...body, secrets: { KEY: "w" } }, rotated).envelope, rotated), false);
		assert.equal(sameSecrets(a, null, rotated), false);
		const moved = resealEnvelope(a!, rotated);
		assert.match(moved, /"sealed":"enc:v2:k2:/);
		assert.match(moved, /"digest":"h1:k2:/);
		assert.equal(sameSecrets(moved, sealSecrets(body, rotated).envelope, rotated), true);
	});

	it("refuses paths that name nothing or overlap, and too many secrets", () => {
		assert.throws(() => checkSecrets({ payload: {}, sensitive: ["a.b"] }), /sensitive\[0\]/);
		assert.throws(() => checkSecrets({ payload: { a: { b: 1 } }, sensitive: ["a", "a.b"] }), /overlaps/);
		const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`S${i}`, "x"]));
		assert.throws(() => checkSecrets({ secrets: many }, "task."), /'task\.secrets'/);
	});

	it("redacts a body for a log line or an audit entry", () => {
		const shown = redactBody(body);
		assert.deepEqual(shown.secrets, { KEY: "***" });
		assert.deepEqual(shown.payload, { env: { TOKEN: "***", A: 1 }, list: ["x", "***"] });
		assert.equal(body.secrets.KEY, "v");
		const plain = { payload: { a: 1 } };
		assert.equal(redactBody(plain), plain);
	});
});
