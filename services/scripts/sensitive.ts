/**
 * Sensitive scripts: a body uploaded with `sensitive: true` is stored sealed (the keyring, its key
 * id beside it) and its sha256 is that of the plaintext, so agents' caches work unchanged. Users,
 * admins included, see `body: "***"`; a terminal, which runs it, gets the plaintext.
 */
import { Op, type WhereOptions } from "sequelize";
import type { Principal } from "../../lib/contracts.ts";
import type { Keyring } from "../../lib/keyring.ts";
import type { ResealTarget } from "../../lib/resealer.ts";
import { REDACTED } from "../../lib/task-secrets.ts";
import type { ScriptModel, ScriptRow } from "../../models/script.model.ts";

/** The purpose script bodies are sealed for (see Keyring.seal). */
export const SCRIPT_CONTEXT = "script-body";

/** The body as stored: sealed when the script is sensitive. */
export function storedBody(body: string, sensitive: boolean, keyring: Keyring): string {
	return sensitive ? keyring.seal(body, SCRIPT_CONTEXT) : body;
}

/** The body as this caller may see it. */
export function shownBody(row: ScriptRow, principal: Principal | undefined, keyring: Keyring): string {
	if (!row.sensitive) return row.body;
	return principal?.kind === "terminal" ? keyring.open(row.body, SCRIPT_CONTEXT) : REDACTED;
}

/** `scripts.body` of sensitive scripts for the re-sealing, in (name, version) order. */
export function scriptResealTarget(model: ScriptModel, keyring: Keyring): ResealTarget {
	return {
		name: "scripts.body",
		async page(after, limit, activeId) {
			const where: Record<string | symbol, unknown> = {
				sensitive: true,
				// A key id is letters, digits and '-' (KID_PATTERN): nothing in it is a LIKE wildcard.
				body: { [Op.notLike]: `enc:v2:${activeId}:%` }
			};
			if (after) {
				const [name, version] = JSON.parse(after) as [string, number];
				where[Op.or] = [{ name: { [Op.gt]: name } }, { name, version: { [Op.gt]: version } }];
			}
			const rows = (await model.findAll({
				where: where as WhereOptions<ScriptRow>,
				attributes: ["name", "version", "body"],
				order: [
					["name", "ASC"],
					["version", "ASC"]
				],
				limit,
				raw: true
			})) as unknown as ScriptRow[];
			return rows.map(row => ({ cursor: JSON.stringify([row.name, row.version]), value: row.body }));
		},
		reseal: value => keyring.reseal(value, SCRIPT_CONTEXT),
		async write(cursor, from, to) {
			const [name, version] = JSON.parse(cursor) as [string, number];
			const [changed] = await model.update({ body: to }, { where: { name, version, body: from } });
			return changed === 1;
		}
	};
}
