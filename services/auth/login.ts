/**
 * `auth.login`: the password check behind the lockout (lockout.ts). Locked keys are refused before
 * the password is looked at; an unknown user costs the same hash as a known one, so neither the
 * answer nor its timing tells which names exist. A disabled user is told so only after the
 * right password.
 */
import type { Context } from "moleculer";
import type { Role, TernMeta } from "../../lib/contracts.ts";
import { Errors } from "../../lib/errors.ts";
import { hashPassword, verifyPassword } from "../../lib/passwords.ts";
import { durationSeconds } from "../../lib/duration.ts";
import type { UserRow } from "../../models/user.model.ts";
import { addressKey, userKey, type LockoutPolicy } from "./lockout.ts";
import type { LoginParams } from "./params.ts";
import { nowOf, type AuthThis } from "./types.ts";

export interface LoginResult {
	token: string;
	expiresIn: string;
	role: Role;
}

function policies(svc: AuthThis): { user: LockoutPolicy; address: LockoutPolicy } {
	const { lockoutThreshold, lockoutAddressThreshold, lockoutBaseMs, lockoutMaxMs, lockoutWindowMs } = svc.settings;
	const common = { baseMs: lockoutBaseMs, maxMs: lockoutMaxMs, windowMs: lockoutWindowMs };
	return { user: { threshold: lockoutThreshold, ...common }, address: { threshold: lockoutAddressThreshold, ...common } };
}

/**
 * Logins under one address, and under one username, run one at a time on this replica: otherwise
 * a burst of guesses sent at once would all pass the lock check before the first failure is
 * counted. (Across replicas a burst gets at most one guess per replica past the threshold.)
 */
export function login(svc: AuthThis, ctx: Context<LoginParams, TernMeta>): Promise<LoginResult> {
	const address = ctx.meta.client?.address ?? null;
	const keys = [userKey(ctx.params.username), ...(address ? [addressKey(address)] : [])];
	const byUser = () => svc.locks.run(keys[0], () => attempt(svc, ctx, keys, address));
	return keys[1] ? svc.locks.run(keys[1], byUser) : byUser();
}

async function attempt(
	svc: AuthThis,
	ctx: Context<LoginParams, TernMeta>,
	keys: string[],
	address: string | null
): Promise<LoginResult> {
	const { username, password } = ctx.params;
	const locked = await svc.guard.lockedFor(keys, nowOf(svc));
	if (locked > 0) throw Errors.rateLimited(locked, "failed logins");

	const row = (await svc.model.findOne({ where: { username }, raw: true })) as unknown as UserRow | null;
	// Hash even for an unknown user so that timing does not tell which names exist.
	const ok = row ? await verifyPassword(password, row.passwordHash) : (await hashPassword(password), false);
	if (!row || !ok) {
		const policy = policies(svc);
		const now = nowOf(svc);
		await svc.guard.fail(keys[0], policy.user, now);
		if (address) await svc.guard.fail(keys[1], policy.address, now);
		throw Errors.badCredentials();
	}
	await svc.guard.reset(keys[0]);
	if (row.disabled) throw Errors.userDisabled(row.username);
	const now = Date.now();
	const { token } = await svc.keys.sign(
		{ kind: "user", role: row.role, uid: row.id, its: now },
		row.username,
		durationSeconds(svc.settings.userTokenTtl, "userTokenTtl"),
		now
	);
	return { token, expiresIn: svc.settings.userTokenTtl, role: row.role };
}
