/**
 * auth: users, logins and tokens. Users and terminals both carry HS256 JWTs signed by the key
 * ring (auth/keys.ts); a terminal's token names its key version, so rotating the key refuses
 * older tokens (after an optional grace period). Users also hold scoped API tokens
 * (auth/api-tokens.ts). Logout revokes a token by its `jti` (auth/revocations.ts); failed logins
 * lock a username or an address for a while (auth/lockout.ts).
 */
import type { Context, ServiceSchema } from "moleculer";
import { createHmac } from "node:crypto";
import { UniqueConstraintError } from "sequelize";
import { LRUCache } from "lru-cache";
import { KeyedLock } from "../lib/keyed-lock.ts";
import { DbMixin, isEntityNotFound, type DbEntityMethods } from "../mixins/db.mixin.ts";
import { defineUser, type UserRow } from "../models/user.model.ts";
import { defineApiToken } from "../models/api-token.model.ts";
import { defineRevokedToken } from "../models/revoked-token.model.ts";
import { defineLoginFailure } from "../models/login-failure.model.ts";
import type {
	ApiTokenView,
	ConfirmationChallenge,
	CreateApiTokenParams,
	Principal,
	TernMeta,
	UpdateUserParams
} from "../lib/contracts.ts";
import { Errors } from "../lib/errors.ts";
import { requireUser } from "../lib/access.ts";
import { generatePassword, hashPassword } from "../lib/passwords.ts";
import {
	actorOf,
	secondConfirmation,
	signConfirmation,
	verifyConfirmation,
	type CheckConfirmationParams,
	type ConfirmRequest
} from "../lib/confirm.ts";
import { KeyRing } from "./auth/keys.ts";
import { Revocations } from "./auth/revocations.ts";
import { LoginGuard } from "./auth/lockout.ts";
import { login, type LoginResult } from "./auth/login.ts";
import { verifyToken } from "./auth/verify.ts";
import { keepLastAdmin, updateUser, withAdminsKept, userView, type UserChangedEvent, type UserView } from "./auth/users.ts";
import { createToken, listTokens, revokeToken, type ApiTokenRevokedEvent, type CreatedApiToken } from "./auth/api-tokens.ts";
import {
	createTokenParams,
	createUserParams,
	loginParams,
	signTerminalParams,
	tokenIdParams,
	updateUserParams,
	userIdParams,
	type CreateUserParams,
	type LoginParams
} from "./auth/params.ts";
import type { AuthSettings, AuthThis, AuthVars } from "./auth/types.ts";

export type { AuthSettings } from "./auth/types.ts";
export type { UserView } from "./auth/users.ts";
export type { LoginParams, CreateUserParams } from "./auth/params.ts";

/** `auth.token.revoked`: a JWT was revoked (logout); every replica refuses it from now. */
export interface TokenRevokedEvent {
	jti: string;
	/** ms */
	expiresAt: number;
}

/** Purges of expired revocations and stale login failures happen at most this often, ms. */
const PURGE_EVERY_MS = 60_000;

interface AuthMethods {
	findUser(ctx: Context, id: number): Promise<UserRow>;
	ensureAdmin(): Promise<void>;
	refresh(): Promise<void>;
}
type This = AuthThis & AuthMethods;

const AuthService: ServiceSchema<AuthSettings, AuthMethods & DbEntityMethods, AuthVars> = {
	name: "auth",
	mixins: [DbMixin(defineUser)],
	settings: {
		$secureSettings: ["jwtSecret", "jwtPreviousSecrets", "adminPassword"],
		jwtSecret: "",
		jwtPreviousSecrets: [],
		userTokenTtl: "12h",
		terminalTokenTtl: 365 * 86_400,
		adminPassword: null,
		confirmTtl: 60_000,
		revocationRefresh: 5000,
		lockoutThreshold: 5,
		lockoutAddressThreshold: 20,
		lockoutBaseMs: 1000,
		lockoutMaxMs: 15 * 60_000,
		lockoutWindowMs: 60 * 60_000,
		apiTokenTouchInterval: 60_000,
		clock: null,
		idField: "id",
		/** What moleculer-db's entity methods return of a user: never the password hash. */
		fields: ["id", "username", "role", "disabled", "createdAt"],
		dbUri: ""
	},
	actions: {
		find: false,
		count: false,
		list: false,
		get: false,

		/** `POST /api/auth/login` → `{ token, expiresIn, role }`; 429 RATE_LIMITED while locked out. */
		login: {
			params: loginParams,
			handler(this: This, ctx: Context<LoginParams, TernMeta>): Promise<LoginResult> {
				return login(this, ctx);
			}
		},

		/** `POST /api/auth/logout`: the caller's token is refused from now, on every replica → `{ ok: true }`. */
		logout: {
			async handler(this: This, ctx: Context<unknown, TernMeta>) {
				const principal = ctx.meta.principal;
				if (!principal) throw Errors.unauthorized();
				if (principal.kind === "user" && principal.apiToken) {
					await revokeToken(this, ctx, principal.apiToken.id);
					return { ok: true };
				}
				if (!principal.jti || principal.exp === undefined) throw Errors.invalidToken("it carries no token id");
				const expiresAt = principal.exp * 1000;
				await this.revocations.revoke(principal.jti, expiresAt);
				await ctx.broadcast("auth.token.revoked", { jti: principal.jti, expiresAt } satisfies TokenRevokedEvent);
				return { ok: true };
			}
		},

		/** Checks a bearer token and returns its principal; throws INVALID_TOKEN otherwise. */
		verify: {
			visibility: "public",
			params: { token: { type: "string", min: 1 } },
			handler(this: This, ctx: Context<{ token: string }>): Promise<Principal> {
				return verifyToken(this, ctx, ctx.params.token);
			}
		},

		/** Signs a terminal's credential (expiring after `terminalTokenTtl`); called by `terminals`. */
		signTerminal: {
			visibility: "public",
			params: signTerminalParams,
			async handler(this: This, ctx: Context<{ terminalId: string; keyVersion: number }>) {
				const { token } = await this.keys.sign(
					{ kind: "terminal", kv: ctx.params.keyVersion },
					ctx.params.terminalId,
					this.settings.terminalTokenTtl
				);
				return token;
			}
		},

		/** `POST /api/users` (admin) */
		createUser: {
			params: createUserParams,
			async handler(this: This, ctx: Context<CreateUserParams, TernMeta>): Promise<UserView> {
				requireUser(ctx, "admin");
				const now = Date.now();
				try {
					const user = (await this._create(ctx, {
						username: ctx.params.username,
						passwordHash: await hashPassword(ctx.params.password),
						role: ctx.params.role,
						disabled: false,
						tokensValidAfter: null,
						createdAt: now,
						updatedAt: now
					})) as UserRow;
					ctx.meta.$statusCode = 201;
					ctx.meta.$location = `/api/users/${user.id}`;
					return userView(user);
				} catch (err) {
					if (err instanceof UniqueConstraintError) throw Errors.userExists(ctx.params.username);
					throw err;
				}
			}
		},

		/** `GET /api/users` (admin) */
		listUsers: {
			async handler(this: This, ctx: Context<unknown, TernMeta>): Promise<UserView[]> {
				requireUser(ctx, "admin");
				const rows = (await this._find(ctx, { sort: ["id"] })) as UserRow[];
				return rows.map(row => userView(row));
			}
		},

		/** `PATCH /api/users/:id` `{ role?, disabled?, password?, currentPassword? }` → the user (see auth/users.ts). */
		updateUser: {
			params: updateUserParams,
			handler(this: This, ctx: Context<UpdateUserParams, TernMeta>): Promise<UserView> {
				return updateUser(this, ctx);
			}
		},

		/**
		 * `DELETE /api/users/:id` (admin), with a second confirmation: 202 `{ confirm }` first, then
		 * with `X-Confirm` → the removed user. The last enabled admin cannot be removed (403).
		 */
		removeUser: {
			params: userIdParams,
			async handler(this: This, ctx: Context<{ id: number }, TernMeta>): Promise<UserView | ConfirmationChallenge> {
				requireUser(ctx, "admin");
				const row = await this.findUser(ctx, ctx.params.id);
				await keepLastAdmin(this, row.id, "removed");
				const tokens = await this.apiTokens.count({ where: { userId: row.id, revokedAt: null } });
				const challenge = await secondConfirmation(ctx, {
					action: "auth.removeUser",
					object: `user:${row.id}`,
					summary: `Delete user '${row.username}' (${row.role}): its logins and its ${tokens} API token(s) stop working`
				});
				if (challenge) return challenge;
				await withAdminsKept(this, async () => {
					await keepLastAdmin(this, row.id, "removed");
					if ((await this.model.destroy({ where: { id: row.id } })) === 0) throw Errors.userNotFound(row.id);
				});
				await this.apiTokens.destroy({ where: { userId: row.id } });
				await ctx.broadcast("user.removed", { id: row.id });
				return userView(row);
			}
		},

		/** `POST /api/tokens` `{ name, scope, expiresInDays? }` → 201 the token, its secret shown once. */
		createToken: {
			params: createTokenParams,
			handler(this: This, ctx: Context<CreateApiTokenParams, TernMeta>): Promise<CreatedApiToken> {
				return createToken(this, ctx);
			}
		},

		/** `GET /api/tokens`: the caller's API tokens (an admin's: everyone's). */
		listTokens: {
			handler(this: This, ctx: Context<unknown, TernMeta>): Promise<ApiTokenView[]> {
				return listTokens(this, ctx);
			}
		},

		/** `DELETE /api/tokens/:id`: revokes one of the caller's API tokens (an admin: anyone's). */
		revokeToken: {
			params: tokenIdParams,
			handler(this: This, ctx: Context<{ id: string }, TernMeta>): Promise<ApiTokenView> {
				return revokeToken(this, ctx, ctx.params.id);
			}
		},

		/** The 202 challenge of a destructive call (lib/confirm.ts), bound to its caller. */
		issueConfirmation: {
			visibility: "public",
			params: { action: "string", object: "string", summary: "string" },
			handler(this: This, ctx: Context<ConfirmRequest, TernMeta>): ConfirmationChallenge {
				const { action, object, summary } = ctx.params;
				const subject = { action, object, actor: actorOf(ctx.meta.principal) };
				const { token, expiresAt } = signConfirmation(this.confirmKey, subject, Date.now(), this.settings.confirmTtl);
				return { confirm: { token, expiresAt: new Date(expiresAt).toISOString(), action, summary } };
			}
		},

		/** Checks an `X-Confirm` token for this call and caller; CONFIRMATION_INVALID or _EXPIRED otherwise. */
		checkConfirmation: {
			visibility: "public",
			params: { token: { type: "string", min: 1, max: 2048 }, action: "string", object: "string" },
			handler(this: This, ctx: Context<CheckConfirmationParams, TernMeta>) {
				const { token, action, object } = ctx.params;
				verifyConfirmation(this.confirmKey, token, { action, object, actor: actorOf(ctx.meta.principal) }, Date.now());
				return { ok: true };
			}
		}
	},
	events: {
		"user.removed"(this: This, ctx: Context<{ id: number }>) {
			this.users.delete(ctx.params.id);
		},
		"auth.user.changed"(this: This, ctx: Context<UserChangedEvent>) {
			this.users.delete(ctx.params.id);
		},
		"auth.apiToken.revoked"(this: This, ctx: Context<ApiTokenRevokedEvent>) {
			this.tokenRows.delete(ctx.params.id);
		},
		"auth.token.revoked"(this: This, ctx: Context<TokenRevokedEvent>) {
			this.revocations.note(ctx.params.jti, ctx.params.expiresAt);
		}
	},
	methods: {
		/** A user as moleculer-db's entity methods give it (no password hash); USER_NOT_FOUND otherwise. */
		async findUser(this: This, ctx: Context, id: number): Promise<UserRow> {
			try {
				return (await this._get(ctx, { id })) as UserRow;
			} catch (err) {
				if (isEntityNotFound(err)) throw Errors.userNotFound(id);
				throw err;
			}
		},

		/** First start: create `admin`, with TERN_ADMIN_PASSWORD or a generated password logged once. */
		async ensureAdmin(this: This) {
			if ((await this.model.count()) > 0) return;
			const password = this.settings.adminPassword ?? generatePassword();
			const now = Date.now();
			try {
				await this.model.create({
					username: "admin",
					passwordHash: await hashPassword(password),
					role: "admin",
					disabled: false,
					tokensValidAfter: null,
					createdAt: now,
					updatedAt: now
				});
			} catch (err) {
				if (err instanceof UniqueConstraintError) return; // another node created it first
				throw err;
			}
			if (!this.settings.adminPassword)
				this.logger.warn(
					`Created user 'admin' with password '${password}' (shown once; set TERN_ADMIN_PASSWORD to choose it)`
				);
		},

		/** Learns the revocations other replicas made (in case an announcement was missed); purges now and then. */
		async refresh(this: This) {
			const now = Date.now();
			await this.revocations.refresh(now);
			if (now - this.lastPurge < PURGE_EVERY_MS) return;
			this.lastPurge = now;
			await this.revocations.purge(now);
			await this.guard.purge(this.settings.lockoutWindowMs, now);
		}
	},
	created(this: This) {
		if (!this.settings.jwtSecret) throw new TypeError("auth needs settings.jwtSecret");
		this.keys = new KeyRing(this.settings.jwtSecret, this.settings.jwtPreviousSecrets ?? []);
		this.confirmKey = createHmac("sha256", this.keys.current.key).update("tern/second-confirmation/v1").digest();
		// A changed or removed user's token is refused at once here (and by announcement elsewhere),
		// and within `ttl` on a replica that missed the announcement.
		this.users = new LRUCache({ max: 10_000, ttl: 5000 });
		this.tokenRows = new LRUCache({ max: 10_000, ttl: 5000 });
		this.touched = new LRUCache({ max: 10_000 });
		this.verified = new LRUCache({ max: 100_000 });
		this.locks = new KeyedLock();
		this.refreshTimer = null;
		this.lastPurge = 0;
	},
	async started(this: This) {
		const sequelize = this.model.sequelize!;
		this.apiTokens = defineApiToken(sequelize);
		this.revocations = new Revocations(defineRevokedToken(sequelize));
		this.guard = new LoginGuard(defineLoginFailure(sequelize));
		await this.ensureAdmin();
		await this.refresh();
		this.refreshTimer = setInterval(() => {
			this.refresh().catch(err => this.logger.warn("Could not read the revoked tokens", err));
		}, this.settings.revocationRefresh);
		this.refreshTimer.unref();
	},
	stopped(this: This) {
		if (this.refreshTimer) clearInterval(this.refreshTimer);
		this.refreshTimer = null;
	}
};

export default AuthService;
