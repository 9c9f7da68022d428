/** The auth service's settings and the shape of its `this`, shared by the modules under auth/. */
import type { Service, ServiceSettingSchema } from "moleculer";
import type { LRUCache } from "lru-cache";
import type { JWTPayload } from "jose";
import type { DbEntityMethods, DbMixinSettings } from "../../mixins/db.mixin.ts";
import type { UserModel, UserRow } from "../../models/user.model.ts";
import type { ApiTokenModel, ApiTokenRow } from "../../models/api-token.model.ts";
import type { KeyRing } from "./keys.ts";
import type { Revocations } from "./revocations.ts";
import type { LoginGuard } from "./lockout.ts";
import type { KeyedLock } from "../../lib/keyed-lock.ts";

export interface AuthSettings extends ServiceSettingSchema, DbMixinSettings {
	/** The current HS256 secret: signs every new token (secure setting). */
	jwtSecret: string;
	/** Earlier secrets: tokens they signed still verify until they expire (secure setting). @defaultValue [] */
	jwtPreviousSecrets: string[];
	/** Lifetime of a user token (jose's notation: "12h", "30m"). @defaultValue "12h" */
	userTokenTtl: string;
	/** Lifetime of a terminal credential, s (TERN_TERMINAL_TOKEN_TTL). @defaultValue 365 days */
	terminalTokenTtl: number;
	/** Lifetime of a second-confirmation token, ms. @defaultValue 60000 */
	confirmTtl: number;
	/** Password of the `admin` created on first start; generated and logged once when null. */
	adminPassword: string | null;
	/** How often the revoked tokens are read again from the database (and expired ones purged), ms. @defaultValue 5000 */
	revocationRefresh: number;
	/** Consecutive failed logins of one username before it is locked. @defaultValue 5 */
	lockoutThreshold: number;
	/** Failed logins from one client address, whatever the usernames, before it is locked. @defaultValue 20 */
	lockoutAddressThreshold: number;
	/** The first lock, ms; each further failure doubles it. @defaultValue 1000 */
	lockoutBaseMs: number;
	/** The longest lock, ms. @defaultValue 15 min */
	lockoutMaxMs: number;
	/** Failures older than this are forgotten, ms. @defaultValue 1 h */
	lockoutWindowMs: number;
	/** An API token's `lastUsedAt` is written at most this often, ms. @defaultValue 60000 */
	apiTokenTouchInterval: number;
	/** The lockout's clock, ms since the epoch (tests pass a fake one). @defaultValue Date.now */
	clock: (() => number) | null;
}

export interface AuthVars {
	model: UserModel;
	apiTokens: ApiTokenModel;
	keys: KeyRing;
	/** Signs second confirmations; derived from the JWT secret, so that one key does one job. */
	confirmKey: Uint8Array;
	/** Users seen recently, so that checking a token costs no query on every request. */
	users: LRUCache<number, UserRow>;
	/** API tokens seen recently, by id; dropped on revocation (here and by announcement). */
	tokenRows: LRUCache<string, ApiTokenRow>;
	/** When this replica last wrote each API token's lastUsedAt. */
	touched: LRUCache<string, number>;
	/**
	 * Claims of JWTs whose signature was checked, until they expire: the HMAC check cost more
	 * than the rest of a submit. Revocation, the user and the terminal are still checked each time.
	 */
	verified: LRUCache<string, JWTPayload>;
	revocations: Revocations;
	guard: LoginGuard;
	/** Serializes the logins of one username and of one address (auth/login.ts), and changes to admins (auth/users.ts), on this replica. */
	locks: KeyedLock;
	refreshTimer: NodeJS.Timeout | null;
	/** When expired revocations and stale login failures were last purged, ms. */
	lastPurge: number;
}

export type AuthThis = Service<AuthSettings> & AuthVars & DbEntityMethods;

/** The lockout's clock. */
export function nowOf(svc: AuthThis): number {
	return svc.settings.clock ? svc.settings.clock() : Date.now();
}
