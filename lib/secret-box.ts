/**
 * The first format of secrets at rest: AES-256-GCM with a random 96-bit IV per value, sealed as
 * `enc:v1:<iv>:<tag>:<ciphertext>` (base64url), with one key derived from a configured secret
 * through HKDF-SHA256. Values are sealed with the keyring now (lib/keyring.ts, `enc:v2:`, the key
 * id beside the value); this box still opens the values of the first format until the re-sealing
 * has moved them.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

const PREFIX = "enc:v1:";

/** A 32-byte key for `info`, derived from `secret`, as base64url. */
export function deriveKey(secret: string, info: string): string {
	return Buffer.from(hkdfSync("sha256", secret, Buffer.alloc(0), info, 32)).toString("base64url");
}

/** Seals and opens values of one purpose (see Keyring.sealer). */
export interface Sealer {
	seal(plain: string): string;
	open(sealed: string): string;
}

export class SecretBox {
	private readonly key: Buffer;

	/** @param key 32 bytes, base64url (see deriveKey) */
	constructor(key: string) {
		this.key = Buffer.from(key, "base64url");
		if (this.key.length !== 32) throw new TypeError("A SecretBox key is 32 bytes, base64url");
	}

	static isSealed(value: string): boolean {
		return value.startsWith(PREFIX);
	}

	seal(plain: string): string {
		const iv = randomBytes(12);
		const cipher = createCipheriv("aes-256-gcm", this.key, iv);
		const data = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
		return PREFIX + [iv, cipher.getAuthTag(), data].map(b => b.toString("base64url")).join(":");
	}

	/** The plain text; throws when the value was not sealed by this key or was altered. */
	open(sealed: string): string {
		if (!SecretBox.isSealed(sealed)) throw new TypeError("Not a sealed value");
		const [iv, tag, data] = sealed
			.slice(PREFIX.length)
			.split(":")
			.map(part => Buffer.from(part, "base64url"));
		const decipher = createDecipheriv("aes-256-gcm", this.key, iv);
		decipher.setAuthTag(tag);
		return Buffer.concat([decipher.update(data), decipher.final()]).toString("utf8");
	}
}
