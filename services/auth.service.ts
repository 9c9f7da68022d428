/**
 * auth: users, logins and tokens. Users and terminals both carry HS256 JWTs; a terminal's
 * token names its key version, so rotating the key refuses every older token at once.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { createHmac } from "node:crypto";
import { SignJWT, jwtVerify, errors as joseErrors, type JWTPayload } from "jose";
import { UniqueConstraintError } from "sequelize";
import { LRUCache } from "lru-cache";
import { DbMixin, isEntityNotFound, type DbEntityMethods, type DbMixinSettings } from "../mixins/db.mixin.ts";
import { defineUser, type UserModel, type UserRow } from "../models/user.model.ts";
import type { ConfirmationChallenge, Principal, Role, TernMeta } from "../lib/contracts.ts";
import { Errors } from "../lib/errors.ts";
import { requireUser } from "../lib/access.ts";
import { generatePassword, hashPassword, verifyPassword } from "../lib/passwords.ts";
import {
	actorOf,
	signConfirmation,
	verifyConfirmation,
	type CheckConfirmationParams,
	type ConfirmRequest
} from "../lib/confirm.ts";
import { call } from "../lib/actions.ts";

export interface AuthSettings extends ServiceSettingSchema, DbMixinSettings {
	/** HS256 secret (secure setting). */
	jwtSecret: string;
	/** Lifetime of a user token. @defaultValue "12h" */
	userTokenTtl: string;
	/** Lifetime of a second-confirmation token, ms. @defaultValue 60000 */
	confirmTtl: number;
	/** Password of the `admin` created on first start; generated and logged once when null. */
	adminPassword: string | null;
	dbUri: string;
}

interface AuthVars {
	model: UserModel;
	key: Uint8Array;
	/** Signs second confirmations; derived from the JWT secret, so that one key does one job. */
	confirmKey: Uint8Array;
	/** Users seen recently, so that checking a token costs no query on every request. */
	users: LRUCache<number, UserRow>;
	/**
	 * Claims of tokens whose signature was checked, until they expire: the HMAC check cost more
	 * than the rest of a submit. Who the token names is still checked each time (below).
	 */
	verified: LRUCache<string, JWTPayload>;
}
interface AuthMethods {
	userView(row: UserRow): UserView;
	findUser(ctx: Context, id: number): Promise<UserRow>;
	ensureAdmin(): Promise<void>;
}
type AuthThis = Service<AuthSettings> & AuthVars & AuthMethods & DbEntityMethods;

export interface UserView {
	id: number;
	username: string;
	role: Role;
	createdAt: string;
}

const ROLES: Role[] = ["admin", "operator", "viewer"];

export interface LoginParams {
	username: string;
	password: string;
}
const loginParams = {
	username: { type: "string", min: 1, max: 64 },
	password: { type: "string", min: 1, max: 1024 },
	$$strict: true
};

export interface CreateUserParams extends LoginParams {
	role: Role;
}
const createUserParams = {
	username: { type: "string", min: 1, max: 64, pattern: /^[A-Za-z0-9_.@-]+$/ },
	password: { type: "string", min: 8, max: 1024 },
	role: { type: "enum", values: ROLES },
	$$strict: true
};

const AuthService: ServiceSchema<AuthSettings, AuthMethods & DbEntityMethods, AuthVars> = {
	name: "auth",
	mixins: [DbMixin(defineUser)],
	settings: {
		$secureSettings: ["jwtSecret", "adminPassword"],
		jwtSecret: "",
		userTokenTtl: "12h",
		adminPassword: null,
		/** Second confirmations expire after this, ms. @defaultValue 60 s */
		confirmTtl: 60_000,
		idField: "id",
		/** What moleculer-db's entity methods return of a user: never the password hash. */
		fields: ["id", "username", "role", "createdAt"],
		dbUri: ""
	},
	actions: {
		find: false,
		count: false,
		list: false,
		get: false,

		/** `POST /api/auth/login` → `{ token, expiresIn, role }` */
		login: {
			params: loginParams,
			async handler(this: AuthThis, ctx: Context<LoginParams>) {
				const row = (await this.model.findOne({
					where: { username: ctx.params.username },
					raw: true
				})) as unknown as UserRow | null;
				// Hash even for an unknown user so that timing does not tell which names exist.
				const ok = row
					? await verifyPassword(ctx.params.password, row.passwordHash)
					: (await hashPassword(ctx.params.password), false);
				if (!row || !ok) throw Errors.badCredentials();
				const token = await new SignJWT({ kind: "user", role: row.role, uid: row.id })
					.setProtectedHeader({ alg: "HS256" })
					.setSubject(row.username)
					.setIssuedAt()
					.setExpirationTime(this.settings.userTokenTtl)
					.sign(this.key);
				return { token, expiresIn: this.settings.userTokenTtl, role: row.role };
			}
		},

		/** Checks a bearer token and returns its principal; throws INVALID_TOKEN otherwise. */
		verify: {
			visibility: "public",
			params: { token: { type: "string", min: 1 } },
			async handler(this: AuthThis, ctx: Context<{ token: string }>): Promise<Principal> {
				let claims = this.verified.get(ctx.params.token);
				if (claims?.exp !== undefined && claims.exp * 1000 <= Date.now()) {
					this.verified.delete(ctx.params.token);
					claims = undefined;
				}
				if (!claims) {
					try {
						({ payload: claims } = await jwtVerify(ctx.params.token, this.key, { algorithms: ["HS256"] }));
					} catch (err) {
						if (err instanceof joseErrors.JWTExpired) throw Errors.invalidToken("it has expired");
						throw Errors.invalidToken("it is malformed or its signature does not match");
					}
					this.verified.set(ctx.params.token, claims);
				}
				if (claims.kind === "user" && typeof claims.sub === "string" && typeof claims.role === "string") {
					// A deleted user's tokens die with the user; the role is the user's current one.
					const uid = Number(claims.uid);
					let row = this.users.get(uid) ?? null;
					if (!row) {
						row = (await this.model.findByPk(uid, { raw: true })) as unknown as UserRow | null;
						if (row) this.users.set(uid, row);
					}
					if (!row || row.username !== claims.sub) throw Errors.invalidToken(`user '${claims.sub}' no longer exists`);
					return { kind: "user", userId: row.id, username: row.username, role: row.role };
				}
				if (claims.kind === "terminal" && typeof claims.sub === "string") {
					const terminal = await call(ctx, "terminals.resolve", {
						id: claims.sub
					});
					if (!terminal) throw Errors.invalidToken(`terminal '${claims.sub}' is not registered`);
					if (terminal.keyVersion !== claims.kv) throw Errors.invalidToken("the terminal's key was rotated");
					if (!terminal.enabled) throw Errors.terminalDisabled(terminal.id);
					return { kind: "terminal", terminalId: terminal.id };
				}
				throw Errors.invalidToken("it names no known principal");
			}
		},

		/** Signs a terminal's credential; called by `terminals` on register and key rotation. */
		signTerminal: {
			visibility: "public",
			params: { terminalId: "string", keyVersion: "number" },
			async handler(this: AuthThis, ctx: Context<{ terminalId: string; keyVersion: number }>) {
				return new SignJWT({ kind: "terminal", kv: ctx.params.keyVersion })
					.setProtectedHeader({ alg: "HS256" })
					.setSubject(ctx.params.terminalId)
					.setIssuedAt()
					.sign(this.key);
			}
		},

		/** `POST /api/users` (admin) */
		createUser: {
			params: createUserParams,
			async handler(this: AuthThis, ctx: Context<CreateUserParams, TernMeta>) {
				requireUser(ctx, "admin");
				const now = Date.now();
				try {
					const user = (await this._create(ctx, {
						username: ctx.params.username,
						passwordHash: await hashPassword(ctx.params.password),
						role: ctx.params.role,
						createdAt: now,
						updatedAt: now
					})) as UserRow;
					ctx.meta.$statusCode = 201;
					return this.userView(user);
				} catch (err) {
					if (err instanceof UniqueConstraintError) throw Errors.userExists(ctx.params.username);
					throw err;
				}
			}
		},

		/** `GET /api/users` (admin) */
		listUsers: {
			async handler(this: AuthThis, ctx: Context<unknown, TernMeta>) {
				requireUser(ctx, "admin");
				const rows = (await this._find(ctx, { sort: ["id"] })) as UserRow[];
				return rows.map(row => this.userView(row));
			}
		},

		/** `DELETE /api/users/:id` (admin); the last admin cannot be removed. */
		removeUser: {
			params: { id: { type: "number", integer: true, positive: true, convert: true } },
			async handler(this: AuthThis, ctx: Context<{ id: number }, TernMeta>) {
				requireUser(ctx, "admin");
				const row = await this.findUser(ctx, ctx.params.id);
				if (row.role === "admin" && (await this._count(ctx, { query: { role: "admin" } })) <= 1)
					throw Errors.forbidden("The last admin cannot be removed");
				await this._remove(ctx, { id: row.id });
				await ctx.broadcast("user.removed", { id: row.id });
				return this.userView(row);
			}
		},

		/** The 202 challenge of a destructive call (lib/confirm.ts), bound to its caller. */
		issueConfirmation: {
			visibility: "public",
			params: { action: "string", object: "string", summary: "string" },
			handler(this: AuthThis, ctx: Context<ConfirmRequest, TernMeta>): ConfirmationChallenge {
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
			handler(this: AuthThis, ctx: Context<CheckConfirmationParams, TernMeta>) {
				const { token, action, object } = ctx.params;
				verifyConfirmation(this.confirmKey, token, { action, object, actor: actorOf(ctx.meta.principal) }, Date.now());
				return { ok: true };
			}
		}
	},
	events: {
		"user.removed"(this: AuthThis, ctx: Context<{ id: number }>) {
			this.users.delete(ctx.params.id);
		}
	},
	methods: {
		/** A user as moleculer-db's entity methods give it (no password hash); USER_NOT_FOUND otherwise. */
		async findUser(this: AuthThis, ctx: Context, id: number): Promise<UserRow> {
			try {
				return (await this._get(ctx, { id })) as UserRow;
			} catch (err) {
				if (isEntityNotFound(err)) throw Errors.userNotFound(id);
				throw err;
			}
		},

		userView(row: UserRow): UserView {
			return {
				id: row.id,
				username: row.username,
				role: row.role,
				createdAt: new Date(Number(row.createdAt)).toISOString()
			};
		},

		/** First start: create `admin`, with TERN_ADMIN_PASSWORD or a generated password logged once. */
		async ensureAdmin(this: AuthThis) {
			if ((await this.model.count()) > 0) return;
			const password = this.settings.adminPassword ?? generatePassword();
			const now = Date.now();
			try {
				await this.model.create({
					username: "admin",
					passwordHash: await hashPassword(password),
					role: "admin",
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
		}
	},
	created(this: AuthThis) {
		if (!this.settings.jwtSecret) throw new TypeError("auth needs settings.jwtSecret");
		this.key = new TextEncoder().encode(this.settings.jwtSecret);
		this.confirmKey = createHmac("sha256", this.key).update("tern/second-confirmation/v1").digest();
		// A removed user's token is refused at once here and within `ttl` on other replicas.
		this.users = new LRUCache({ max: 10_000, ttl: 5000 });
		this.verified = new LRUCache({ max: 100_000 });
	},
	async started(this: AuthThis) {
		await this.ensureAdmin();
	}
};

export default AuthService;
