/**
 * Revoked JWTs (logout), by `jti`: written to `revoked_tokens` (so they survive a restart),
 * announced to every auth replica, and held here in memory so that checking one costs a map
 * lookup. A replica that missed the announcement learns it from the table: the set is loaded
 * at start and the rows revoked since the last look are read again every `refreshMs`. Rows
 * are purged once their token has expired anyway.
 */
import { Op, UniqueConstraintError } from "sequelize";
import type { RevokedTokenModel } from "../../models/revoked-token.model.ts";

/** Rows revoked this long before the last look are read again: clocks of replicas differ a little. */
const OVERLAP_MS = 10_000;

export class Revocations {
	/** jti → expiry, ms. */
	private readonly revoked = new Map<string, number>();
	private lastLook = 0;

	private readonly model: RevokedTokenModel;

	constructor(model: RevokedTokenModel) {
		this.model = model;
	}

	has(jti: string | undefined): boolean {
		return jti !== undefined && this.revoked.has(jti);
	}

	/** Held in memory only: what an announcement from another replica tells. */
	note(jti: string, expiresAt: number): void {
		if (expiresAt > Date.now()) this.revoked.set(jti, expiresAt);
	}

	/** Writes the revocation; a second logout with the same token changes nothing. */
	async revoke(jti: string, expiresAt: number, now = Date.now()): Promise<void> {
		this.note(jti, expiresAt);
		try {
			await this.model.create({ jti, expiresAt, revokedAt: now });
		} catch (err) {
			if (!(err instanceof UniqueConstraintError)) throw err;
		}
	}

	/** Reads the rows revoked since the last look (all on the first), forgets the expired ones. */
	async refresh(now = Date.now()): Promise<void> {
		const since = this.lastLook - OVERLAP_MS;
		this.lastLook = now;
		const rows = (await this.model.findAll({
			where: { revokedAt: { [Op.gte]: since }, expiresAt: { [Op.gt]: now } },
			attributes: ["jti", "expiresAt"],
			raw: true
		})) as unknown as { jti: string; expiresAt: number | string }[];
		for (const row of rows) this.revoked.set(row.jti, Number(row.expiresAt));
		for (const [jti, expiresAt] of this.revoked) if (expiresAt <= now) this.revoked.delete(jti);
	}

	/** Deletes the rows of tokens that have expired: they are refused for that reason now. */
	async purge(now = Date.now()): Promise<number> {
		return this.model.destroy({ where: { expiresAt: { [Op.lte]: now } } });
	}
}
