/**
 * The audit service's data access: every statement on audit_log, one named method each, values
 * always bound. There is no UPDATE and no DELETE here, on purpose: the log is append-only.
 * Column names come only from the list below, never from a caller.
 */
import type { Sequelize } from "sequelize";
import { Statements } from "../../lib/sql/statements.ts";
import type { AuditLogRow } from "../../models/audit.model.ts";
import type { ChainHead } from "./chain.ts";

const COLUMNS = [
	"chain",
	"seq",
	"at",
	"actor",
	"actorType",
	"action",
	"object",
	"address",
	"userAgent",
	"outcome",
	"changes",
	"prevHash",
	"hash"
] as const satisfies readonly (keyof AuditLogRow)[];

const q = (column: string) => `\`${column}\``;
const SELECT = `SELECT id, ${COLUMNS.map(q).join(", ")} FROM audit_log`;

/** What `GET /api/audit` filters on; times in epoch ms. */
export interface AuditFilter {
	actor?: string;
	action?: string;
	object?: string;
	since?: number;
	until?: number;
}

function row(raw: AuditLogRow): AuditLogRow {
	return { ...raw, id: Number(raw.id), seq: Number(raw.seq), at: Number(raw.at) };
}

/** The WHERE clause of a filter and its values, numbered from $1. */
function where(filter: AuditFilter): { sql: string; values: unknown[] } {
	const terms: string[] = [];
	const values: unknown[] = [];
	const add = (term: string, value: unknown) => {
		values.push(value);
		terms.push(term.replace("?", `$${values.length}`));
	};
	if (filter.actor !== undefined) add("actor = ?", filter.actor);
	if (filter.action !== undefined) add("action = ?", filter.action);
	if (filter.object !== undefined) add("`object` = ?", filter.object);
	if (filter.since !== undefined) add("`at` >= ?", filter.since);
	if (filter.until !== undefined) add("`at` < ?", filter.until);
	return { sql: terms.length ? ` WHERE ${terms.join(" AND ")}` : "", values };
}

export class AuditStore {
	private readonly sql: Statements;

	constructor(sequelize: Sequelize) {
		this.sql = new Statements(sequelize);
	}

	/** The last row of `chain`, or null for a chain not begun. */
	async head(chain: string): Promise<ChainHead | null> {
		const [last] = await this.sql.select<{ seq: number; hash: string }>(
			"SELECT seq, `hash` FROM audit_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
			[chain]
		);
		return last ? { seq: Number(last.seq), hash: last.hash } : null;
	}

	/** One multi-row INSERT: all of `rows` or none (a taken (chain, seq) refuses the lot). */
	async append(rows: Omit<AuditLogRow, "id">[]): Promise<void> {
		if (rows.length === 0) return;
		const width = COLUMNS.length;
		const tuples = rows.map((_, r) => `(${COLUMNS.map((_c, c) => `$${r * width + c + 1}`).join(", ")})`);
		await this.sql.run(
			`INSERT INTO audit_log (${COLUMNS.map(q).join(", ")}) VALUES ${tuples.join(", ")}`,
			rows.flatMap(r => COLUMNS.map(c => r[c] ?? null))
		);
	}

	/** Every chain's name, in order. */
	async chains(): Promise<string[]> {
		const rows = await this.sql.select<{ chain: string }>("SELECT DISTINCT chain FROM audit_log ORDER BY chain", []);
		return rows.map(r => r.chain);
	}

	/** Up to `limit` rows of `chain` after `afterSeq`, in seq order. */
	async chainPage(chain: string, afterSeq: number, limit: number): Promise<AuditLogRow[]> {
		const rows = await this.sql.select<AuditLogRow>(`${SELECT} WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [
			chain,
			afterSeq,
			limit
		]);
		return rows.map(row);
	}

	/** A page of the rows `filter` matches, newest first. */
	async list(filter: AuditFilter, offset: number, limit: number): Promise<AuditLogRow[]> {
		const { sql, values } = where(filter);
		const n = values.length;
		const rows = await this.sql.select<AuditLogRow>(
			`${SELECT}${sql} ORDER BY \`at\` DESC, id DESC LIMIT $${n + 1} OFFSET $${n + 2}`,
			[...values, limit, offset]
		);
		return rows.map(row);
	}

	async count(filter: AuditFilter): Promise<number> {
		const { sql, values } = where(filter);
		const [result] = await this.sql.select<{ n: number }>(`SELECT COUNT(*) AS n FROM audit_log${sql}`, values);
		return Number(result?.n ?? 0);
	}
}
