/**
 * Data keys for encryption at rest: AES-256-GCM, a random 96-bit nonce per value, and the id of
 * the key beside the value, so that a value sealed with an older key still opens after the active
 * key changes, and the re-sealing knows which values are not on the active key yet:
 *
 *   enc:v2:<kid>:<iv>:<tag>:<data>      (base64url parts)
 *
 * Values of the first format, `enc:v1:<iv>:<tag>:<data>` (alert channel secrets, sealed with a key
 * derived from the JWT secret, without a key id), open with the `legacy` key.
 *
 * Each value is bound to its purpose (`context`, the GCM additional data): a task's sealed secrets
 * copied into a script row do not open there. Keyed digests (HMAC-SHA256, with a key of their own
 * derived from the data key) compare secrets without storing them.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { randomBytes } from "node:crypto";
import { SecretBox, type Sealer } from "./secret-box.ts";

/** One configured data key: its id and its 32 bytes. */
export interface DataKey {
	id: string;
	/** 32 bytes, base64 or base64url. */
	key: string;
}

/** What a key id may be: it sits inside the sealed value, between colons, and in SQL LIKE patterns. */
export const KID_PATTERN = /^[A-Za-z0-9-]{1,32}$/;
const V2 = "enc:v2:";
const DIGEST = "h1:";

/** A data key's value was sealed with a key that is no longer configured. */
export class MissingKeyError extends Error {
	readonly kid: string;
	constructor(kid: string, known: string[]) {
		super(
			`A value is sealed with data key '${kid}', which is not configured (configured: ${known.join(", ") || "none"}); ` +
				`add '${kid}:<its key>' back to TERN_DATA_KEYS (after the active key) until the re-sealing has moved every value`
		);
		this.name = "MissingKeyError";
		this.kid = kid;
	}
}

/**
 * `k2:<base64 32 bytes>,k1:<…>`: the active key first. Throws a TypeError naming `what` (the
 * variable or file it came from) when an entry is malformed.
 */
export function parseDataKeys(text: string, what = "TERN_DATA_KEYS"): DataKey[] {
	const keys: DataKey[] = [];
	for (const entry of text
		.split(/[,\s]+/)
		.map(s => s.trim())
		.filter(Boolean)) {
		const colon = entry.indexOf(":");
		const id = colon > 0 ? entry.slice(0, colon) : "";
		const key = entry.slice(colon + 1);
		if (!KID_PATTERN.test(id))
			throw new TypeError(`${what}: each entry is <id>:<base64 32 bytes>, the id letters, digits and '-' (1-32)`);
		if (Buffer.from(key, "base64").length !== 32)
			throw new TypeError(`${what}: key '${id}' is not 32 bytes of base64 (make one with: openssl rand -base64 32)`);
		if (keys.some(k => k.id === id)) throw new TypeError(`${what}: key id '${id}' is given twice`);
		keys.push({ id, key });
	}
	if (keys.length === 0) throw new TypeError(`${what} names no key`);
	return keys;
}

/** A new data key as `<id>:<base64>`, as TERN_DATA_KEYS and the data dir's `data-keys` file hold it. */
export function newDataKey(id: string): string {
	return `${id}:${randomBytes(32).toString("base64")}`;
}

/** A 32-byte key derived from a secret (HKDF-SHA256) for `info`, as base64. */
export function derivedDataKey(secret: string, info: string): string {
	return Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), info, 32)).toString("base64");
}

interface Key {
	cipher: Buffer;
	mac: Buffer;
}

export class Keyring {
	private readonly keys = new Map<string, Key>();
	private readonly legacy: SecretBox | null;
	/** The id of the key that seals new values. */
	readonly activeId: string;

	/**
	 * @param keys the active key first, then older ones that still open values
	 * @param legacy the key of `enc:v1:` values (base64url 32 bytes), when some may exist
	 */
	constructor(keys: readonly DataKey[], legacy?: string) {
		if (keys.length === 0) throw new TypeError("A keyring needs at least one data key");
		for (const { id, key } of keys) {
			const bytes = Buffer.from(key, "base64");
			if (!KID_PATTERN.test(id) || bytes.length !== 32) throw new TypeError(`Data key '${id}' is not a 32-byte key`);
			const mac = Buffer.from(hkdfSync("sha256", bytes, Buffer.alloc(0), "tern digest", 32));
			this.keys.set(id, { cipher: bytes, mac });
		}
		this.activeId = keys[0].id;
		this.legacy = legacy ? new SecretBox(legacy) : null;
	}

	static isSealed(value: string): boolean {
		return value.startsWith(V2) || SecretBox.isSealed(value);
	}

	/** The id of the key a value is sealed with: `v1` for the first format, null when it is not sealed. */
	static kidOf(value: string): string | null {
		if (value.startsWith(V2)) return value.slice(V2.length, value.indexOf(":", V2.length));
		return SecretBox.isSealed(value) ? "v1" : null;
	}

	/** Whether a sealed value (or a digest) is on the active key already. */
	isCurrent(value: string): boolean {
		return value.startsWith(`${V2}${this.activeId}:`) || value.startsWith(`${DIGEST}${this.activeId}:`);
	}

	/** The ids of the configured keys, the active one first. */
	get ids(): string[] {
		return [...this.keys.keys()];
	}

	private key(kid: string): Key {
		const key = this.keys.get(kid);
		if (!key) throw new MissingKeyError(kid, this.ids);
		return key;
	}

	/** `plain` sealed with the active key, for `context` (the purpose, bound as additional data). */
	seal(plain: string, context: string): string {
		const iv = randomBytes(12);
		const cipher = createCipheriv("aes-256-gcm", this.key(this.activeId).cipher, iv);
		cipher.setAAD(Buffer.from(context));
		const data = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
		return `${V2}${this.activeId}:${[iv, cipher.getAuthTag(), data].map(b => b.toString("base64url")).join(":")}`;
	}

	/**
	 * The plain text of a sealed value. Throws MissingKeyError when its key is not configured, and
	 * an Error when it was altered or sealed for another context.
	 */
	open(sealed: string, context: string): string {
		if (SecretBox.isSealed(sealed)) {
			if (!this.legacy) throw new MissingKeyError("v1", this.ids);
			return this.legacy.open(sealed);
		}
		if (!sealed.startsWith(V2)) throw new TypeError("Not a sealed value");
		const [kid, iv, tag, data] = sealed.slice(V2.length).split(":");
		const decipher = createDecipheriv("aes-256-gcm", this.key(kid).cipher, Buffer.from(iv, "base64url"));
		decipher.setAAD(Buffer.from(context));
		decipher.setAuthTag(Buffer.from(tag, "base64url"));
		return Buffer.concat([decipher.update(Buffer.from(data, "base64url")), decipher.final()]).toString("utf8");
	}

	/** `seal` and `open` for one context. */
	sealer(context: string): Sealer {
		return { seal: plain => this.seal(plain, context), open: sealed => this.open(sealed, context) };
	}

	/** A sealed value moved to the active key (the same value when it is on it already). */
	reseal(sealed: string, context: string): string {
		return this.isCurrent(sealed) ? sealed : this.seal(this.open(sealed, context), context);
	}

	/** A keyed digest of `plain` (HMAC-SHA256), `h1:<kid>:<base64url>`: equal texts, equal digests under one key. */
	digest(plain: string, kid = this.activeId): string {
		const mac = createHmac("sha256", this.key(kid).mac).update(plain).digest("base64url");
		return `${DIGEST}${kid}:${mac}`;
	}

	/** Whether `digest` (made under any configured key) is the digest of `plain`. */
	matches(digest: string, plain: string): boolean {
		if (!digest.startsWith(DIGEST)) return false;
		const kid = digest.slice(DIGEST.length, digest.indexOf(":", DIGEST.length));
		const expected = Buffer.from(this.digest(plain, kid));
		const given = Buffer.from(digest);
		return expected.length === given.length && timingSafeEqual(expected, given);
	}
}
