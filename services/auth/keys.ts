/**
 * The JWT signing keys: the current one signs, the current and the previous ones verify, so a
 * secret rotates without logging everyone out. Each key is named in the token's `kid` header by
 * an id derived from the secret (a hash prefix: nothing to configure, nothing that reveals it).
 * Only HS256 is accepted; `iss`, `aud`, `exp`, `iat` and `jti` are required.
 */
import { createHash, randomBytes } from "node:crypto";
import { SignJWT, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from "jose";
import { Errors } from "../../lib/errors.ts";

export const ISSUER = "tern";
export const AUDIENCE = "tern";
const ALGORITHM = "HS256";

export interface SigningKey {
	kid: string;
	key: Uint8Array;
}

/** The `kid` of a secret: the first 16 characters of its SHA-256, base64url. */
export function kidOf(secret: string): string {
	return createHash("sha256").update(`tern/jwt-kid/v1\0${secret}`).digest("base64url").slice(0, 16);
}

export interface Signed {
	token: string;
	jti: string;
	/** s since the epoch. */
	exp: number;
}

export class KeyRing {
	readonly current: SigningKey;
	private readonly byKid = new Map<string, SigningKey>();

	constructor(current: string, previous: readonly string[] = []) {
		this.current = { kid: kidOf(current), key: new TextEncoder().encode(current) };
		this.byKid.set(this.current.kid, this.current);
		for (const secret of previous) {
			const kid = kidOf(secret);
			if (!this.byKid.has(kid)) this.byKid.set(kid, { kid, key: new TextEncoder().encode(secret) });
		}
	}

	/** The key ids that verify, the current one first. */
	get kids(): string[] {
		return [...this.byKid.keys()];
	}

	/** `claims` signed with the current key, for `subject`, living `ttlSeconds` from `now` (ms). */
	async sign(claims: JWTPayload, subject: string, ttlSeconds: number, now = Date.now()): Promise<Signed> {
		const jti = randomBytes(16).toString("base64url");
		const iat = Math.floor(now / 1000);
		const exp = iat + ttlSeconds;
		const token = await new SignJWT(claims)
			.setProtectedHeader({ alg: ALGORITHM, typ: "JWT", kid: this.current.kid })
			.setIssuer(ISSUER)
			.setAudience(AUDIENCE)
			.setSubject(subject)
			.setJti(jti)
			.setIssuedAt(iat)
			.setExpirationTime(exp)
			.sign(this.current.key);
		return { token, jti, exp };
	}

	/** The claims of a valid token; INVALID_TOKEN saying why otherwise. */
	async verify(token: string): Promise<JWTPayload> {
		let header;
		try {
			header = decodeProtectedHeader(token);
		} catch {
			throw Errors.invalidToken("it is malformed");
		}
		if (header.alg !== ALGORITHM) throw Errors.invalidToken(`algorithm '${String(header.alg)}' is not accepted`);
		if (typeof header.kid !== "string") throw Errors.invalidToken("it names no signing key (kid)");
		const key = this.byKid.get(header.kid);
		if (!key) throw Errors.invalidToken(`its signing key '${header.kid}' is unknown`);
		try {
			const { payload } = await jwtVerify(token, key.key, {
				algorithms: [ALGORITHM],
				issuer: ISSUER,
				audience: AUDIENCE,
				requiredClaims: ["exp", "iat", "jti", "sub"]
			});
			return payload;
		} catch (err) {
			if (err instanceof joseErrors.JWTExpired) throw Errors.invalidToken("it has expired");
			if (err instanceof joseErrors.JWTClaimValidationFailed)
				throw Errors.invalidToken(`its '${err.claim}' claim is missing or wrong`);
			throw Errors.invalidToken("it is malformed or its signature does not match");
		}
	}
}
