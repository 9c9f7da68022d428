/**
 * Users: their views, the cached rows tokens are checked against, and the changes an admin or
 * the user may make (PATCH /api/users/:id). The last enabled admin is never lost: it cannot be
 * demoted, disabled or deleted.
 */
import type { Context } from "moleculer";
import type { Role, TernMeta, UpdateUserParams, UserPrincipal } from "../../lib/contracts.ts";
import { Errors } from "../../lib/errors.ts";
import { requireUser } from "../../lib/access.ts";
import { hashPassword, verifyPassword } from "../../lib/passwords.ts";
import type { UserRow } from "../../models/user.model.ts";
import type { AuthThis } from "./types.ts";

export interface UserView {
	id: number;
	username: string;
	role: Role;
	disabled: boolean;
	createdAt: string;
}

/** `auth.user.changed`: a user's role, password or state changed; replicas drop the cached row. */
export interface UserChangedEvent {
	id: number;
}

export function userView(row: UserRow): UserView {
	return {
		id: row.id,
		username: row.username,
		role: row.role,
		disabled: Boolean(row.disabled),
		createdAt: new Date(Number(row.createdAt)).toISOString()
	};
}

/** The user a token names, from the cache or the database; null when gone. */
export async function loadUser(svc: AuthThis, id: number): Promise<UserRow | null> {
	const cached = svc.users.get(id);
	if (cached) return cached;
	const row = (await svc.model.findByPk(id, { raw: true })) as unknown as UserRow | null;
	if (row) svc.users.set(id, row);
	return row;
}

/** The full row (with the password hash); USER_NOT_FOUND otherwise. */
export async function userRow(svc: AuthThis, id: number): Promise<UserRow> {
	const row = (await svc.model.findByPk(id, { raw: true })) as unknown as UserRow | null;
	if (!row) throw Errors.userNotFound(id);
	return row;
}

/** Whether a token issued at `issuedAtMs` predates the user's last password change or disable. */
export function issuedBeforeReset(row: UserRow, issuedAtMs: number): boolean {
	return row.tokensValidAfter !== null && row.tokensValidAfter !== undefined && issuedAtMs < Number(row.tokensValidAfter);
}

/** FORBIDDEN when user `id` is the last enabled admin, so that demoting, disabling or deleting it would leave none. */
export async function keepLastAdmin(svc: AuthThis, id: number, what: string): Promise<void> {
	const admins = (await svc.model.findAll({
		where: { role: "admin", disabled: false },
		attributes: ["id"],
		raw: true
	})) as unknown as { id: number }[];
	if (admins.length <= 1 && admins.some(admin => admin.id === id))
		throw Errors.forbidden(`The last admin cannot be ${what}: make another admin first`);
}

/**
 * Runs a change that may take an admin away with the check before it, one at a time on this
 * replica, so that two admins demoted at once cannot both pass the check.
 */
export function withAdminsKept<T>(svc: AuthThis, work: () => Promise<T>): Promise<T> {
	return svc.locks.run("users:admins", work);
}

const FIELDS = ["role", "disabled", "password"] as const;

/**
 * PATCH /api/users/:id. An admin changes `role`, `disabled` and `password` of anyone; any user
 * changes their own `password`, giving `currentPassword` (wrong: BAD_CREDENTIALS, 401). A password
 * change or a disable refuses every token issued before it.
 */
export async function updateUser(svc: AuthThis, ctx: Context<UpdateUserParams, TernMeta>): Promise<UserView> {
	requireUser(ctx, "viewer");
	const { id, role, disabled, password, currentPassword } = ctx.params;
	if (FIELDS.every(field => ctx.params[field] === undefined)) {
		const message = `Give at least one of ${FIELDS.map(f => `'${f}'`).join(", ")}`;
		throw Errors.validation(message, [{ type: "required", field: "body", message }]);
	}
	const caller = ctx.meta.principal as UserPrincipal | undefined;
	const isAdmin = !caller || caller.role === "admin";
	const self = caller?.userId === id;
	if (!isAdmin) {
		if (!self) throw Errors.forbidden("Only an admin may change another user");
		if (role !== undefined || disabled !== undefined)
			throw Errors.forbidden("Only an admin may change a user's role or disable a user");
	}
	const row = await userRow(svc, id);
	if (password !== undefined && self) {
		if (currentPassword === undefined) {
			const message = "'currentPassword' is required to change your own password";
			throw Errors.validation(message, [{ type: "required", field: "currentPassword", message }]);
		}
		if (!(await verifyPassword(currentPassword, row.passwordHash))) throw Errors.badCredentials();
	}
	const passwordHash = password === undefined ? undefined : await hashPassword(password);
	const now = Date.now();
	const changes: Partial<UserRow> = { updatedAt: now };
	if (role !== undefined) changes.role = role;
	if (disabled !== undefined) changes.disabled = disabled;
	if (passwordHash !== undefined) changes.passwordHash = passwordHash;
	// Tokens issued before now die; re-enabling a user does not bring its old tokens back.
	if (password !== undefined || disabled === true) changes.tokensValidAfter = now;
	const demoted = role !== undefined && role !== "admin";
	await withAdminsKept(svc, async () => {
		if (demoted || disabled === true) await keepLastAdmin(svc, id, demoted ? "demoted" : "disabled");
		await svc.model.update(changes, { where: { id } });
	});
	svc.users.delete(id);
	await ctx.broadcast("auth.user.changed", { id } satisfies UserChangedEvent);
	return userView({ ...row, ...changes });
}
