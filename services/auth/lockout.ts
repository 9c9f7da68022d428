/**
 * The login lockout: consecutive failed logins are counted per username and per client address
 * in `login_failures`, so every replica sees the same counts. Past a threshold the key is locked
 * for `baseMs`, doubling with each further failure up to `maxMs`; while it is locked every login
 * under it is refused with RATE_LIMITED, the right password too. A success clears the username's
 * count (not the address's: one good account must not reset a sprayer's count). A key quiet for
 * `windowMs` starts over.
 */
import { Op, UniqueConstraintError } from "sequelize";
import type { LoginFailureModel, LoginFailureRow } from "../../models/login-failure.model.ts";

export interface LockoutPolicy {
	/** Failures of one key before it locks. */
	threshold: number;
	/** The first lock, ms. */
	baseMs: number;
	/** The longest lock, ms. */
	maxMs: number;
	/** Failures older than this are forgotten, ms. */
	windowMs: number;
}

/** How long a key with `failures` consecutive failures stays locked, ms (0: not locked). */
export function lockMs(failures: number, policy: LockoutPolicy): number {
	if (failures < policy.threshold) return 0;
	const doublings = Math.min(failures - policy.threshold, 40);
	return Math.min(policy.baseMs * 2 ** doublings, policy.maxMs);
}

export const userKey = (username: string) => `user:${username.toLowerCase()}`;
export const addressKey = (address: string) => `addr:${address}`;

export class LoginGuard {
	private readonly model: LoginFailureModel;

	constructor(model: LoginFailureModel) {
		this.model = model;
	}

	/** Seconds until the latest lock among `keys` ends; 0 when none is locked. */
	async lockedFor(keys: string[], now: number): Promise<number> {
		const rows = (await this.model.findAll({
			where: { key: { [Op.in]: keys } },
			attributes: ["lockedUntil"],
			raw: true
		})) as unknown as { lockedUntil: number | string }[];
		const until = Math.max(0, ...rows.map(row => Number(row.lockedUntil)));
		return until > now ? Math.ceil((until - now) / 1000) : 0;
	}

	/** Counts one failure of `key` (atomically: replicas count into the same row) and locks it when due. */
	async fail(key: string, policy: LockoutPolicy, now: number): Promise<void> {
		const row = (await this.model.findByPk(key, { raw: true })) as unknown as LoginFailureRow | null;
		const first = (): LoginFailureRow => ({ key, failures: 1, lockedUntil: now + lockMs(1, policy), lastAt: now });
		if (!row) {
			try {
				await this.model.create(first());
				return;
			} catch (err) {
				if (!(err instanceof UniqueConstraintError)) throw err;
			}
		} else if (now - Number(row.lastAt) > policy.windowMs) {
			const [changed] = await this.model.update(first(), { where: { key, lastAt: row.lastAt } });
			if (changed > 0) return;
		}
		await this.model.increment("failures", { where: { key } });
		const counted = (await this.model.findByPk(key, { raw: true })) as unknown as LoginFailureRow | null;
		const failures = counted ? Number(counted.failures) : 1;
		const lock = lockMs(failures, policy);
		await this.model.update({ lastAt: now, ...(lock > 0 ? { lockedUntil: now + lock } : {}) }, { where: { key } });
	}

	async reset(key: string): Promise<void> {
		await this.model.destroy({ where: { key } });
	}

	/** Forgets keys that are neither locked nor recent. */
	async purge(windowMs: number, now: number): Promise<void> {
		await this.model.destroy({ where: { lastAt: { [Op.lt]: now - windowMs }, lockedUntil: { [Op.lt]: now } } });
	}
}
