/**
 * `terminals.rotateKey`: a new key version for a terminal, with a second confirmation. Without a
 * grace period every older credential is refused at once and the live session ends; with one, the
 * previous version is still accepted until `previousKeyUntil`, so the new credential can be rolled
 * out first. (A session opened with the old key before then stays up until it reconnects.)
 */
import type { Context } from "moleculer";
import type { ConfirmationChallenge, TerminalRevokedEvent, TerminalUpdatedEvent, TernMeta } from "../../lib/contracts.ts";
import { requireUser } from "../../lib/access.ts";
import { secondConfirmation } from "../../lib/confirm.ts";
import { call } from "../../lib/actions.ts";
import type { RotateKeyParams } from "./params.ts";
import type { TerminalsThis } from "./methods.ts";

export interface RotatedKey {
	id: string;
	token: string;
	keyVersion: number;
	/** The previous version and until when it is still accepted (ISO-8601); null without grace. */
	previousKeyVersion: number | null;
	previousKeyUntil: string | null;
}

export async function rotateKey(
	svc: TerminalsThis,
	ctx: Context<RotateKeyParams, TernMeta>
): Promise<RotatedKey | ConfirmationChallenge> {
	requireUser(ctx, "operator");
	const graceSeconds = ctx.params.graceSeconds ?? 0;
	const row = await svc.findRow(ctx, ctx.params.id);
	const challenge = await secondConfirmation(ctx, {
		action: "terminals.rotateKey",
		object: `terminal:${row.id}`,
		summary:
			graceSeconds > 0
				? `Rotate the key of terminal '${row.id}': its current credential keeps working for ${graceSeconds} s, then is refused`
				: `Rotate the key of terminal '${row.id}': its current credential is refused at once and its session is closed`
	});
	if (challenge) return challenge;
	const now = Date.now();
	const keyVersion = row.keyVersion + 1;
	const previousKeyUntil = graceSeconds > 0 ? now + graceSeconds * 1000 : null;
	// Compare-and-set: two rotations at once make one new version, not two (both answer its token).
	await svc.model.update(
		{
			keyVersion,
			keyIssuedAt: now,
			previousKeyVersion: previousKeyUntil === null ? null : row.keyVersion,
			previousKeyUntil,
			updatedAt: now
		},
		{ where: { id: row.id, keyVersion: row.keyVersion } }
	);
	await ctx.broadcast("terminal.updated", { terminalId: row.id } satisfies TerminalUpdatedEvent);
	if (previousKeyUntil === null)
		await ctx.broadcast("terminal.revoked", { terminalId: row.id, reason: "key-rotated" } satisfies TerminalRevokedEvent);
	const token = await call(ctx, "auth.signTerminal", { terminalId: row.id, keyVersion });
	return {
		id: row.id,
		token,
		keyVersion,
		previousKeyVersion: previousKeyUntil === null ? null : row.keyVersion,
		previousKeyUntil: previousKeyUntil === null ? null : new Date(previousKeyUntil).toISOString()
	};
}
